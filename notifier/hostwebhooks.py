"""Webhooks to the host application: acceptance.created / acceptance.declined, signed, retried."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import re
import socket
import ssl
import time
from urllib.parse import SplitResult, urlsplit

from flask import current_app
from psycopg import Connection
from psycopg.types.json import Jsonb
from rq import Retry, get_current_job

from . import db, evidence, queues

# RQ retries a failed delivery after these many seconds (about 1 h 40 min in all).
BACKOFF = [10, 60, 300, 1200, 4800]
TIMEOUT = 10

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
CGNAT = ipaddress.ip_network("100.64.0.0/10")  # is_private leaves it out; is_global does not
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the last 32 bits are an IPv4 address
HOST_NAME = re.compile(r"[\w.-]+")
INET_ATON_FORM = re.compile(r"[0-9a-fx.]+")


class Refused(Exception):
    """A webhook target we will not contact; permanent until the URL changes."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256 of "<unix>." + body>` — the Stripe-style scheme."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


# Queues one event per key with a webhook URL that can see this user, in the append statement;
# the payload is built from the inserted row `a`. Besides `evidence.append_sql`'s columns, `r`
# gives external_id, slug, seq, uid (the version) and owner (the key the user belongs to, if
# any); `{join}` pairs each inserted row with its `r` (one row each, or by id in a batch).
WEBHOOK_CTES_TEMPLATE = """
    , w AS (
        INSERT INTO host_webhook_events (api_key_id, acceptance_id, event, url, payload)
        SELECT s.api_key_id, a.id, e.event, s.webhook_url,
               jsonb_build_object(
                   'event', e.event,
                   'acceptance', jsonb_build_object(
                       'id', a.id,
                       'external_id', r.external_id,
                       'policy', r.slug,
                       'version', r.seq,
                       'version_uid', r.uid::text,
                       'decision', a.decision,
                       'method', a.method,
                       'recorded_at', a.recorded_at,
                       'content_sha256', a.content_sha256))
          FROM a
          {join}
    CROSS JOIN LATERAL (
               SELECT CASE a.decision WHEN 'accepted' THEN 'acceptance.created'
                                      ELSE 'acceptance.declined' END AS event
          ) e
          JOIN api_key_settings s ON s.webhook_url IS NOT NULL
          JOIN api_keys k ON k.id = s.api_key_id
         WHERE k.revoked_at IS NULL AND (NOT s.scoped OR s.api_key_id = r.owner)
        ON CONFLICT (api_key_id, acceptance_id) DO NOTHING
        RETURNING id, acceptance_id
    )"""
WEBHOOK_CTES = WEBHOOK_CTES_TEMPLATE.format(join="JOIN r ON true")


def append_sql(source: str, columns: str = "", joins: str = "") -> str:
    """`evidence.append_sql` plus the decision's webhook events (`event_ids`, in id order):
    the one append statement of every decision path, fed by the caller's `source`."""
    return db.compact(
        evidence.append_sql(
            source,
            WEBHOOK_CTES,
            ", ARRAY(SELECT id FROM w ORDER BY id) AS event_ids" + columns,
            joins,
        )
    )


# `r` from parameters: the decision paths that hold the user and the version already (widget,
# email link, implied; `acceptances.record`).
APPEND_SQL = append_sql(
    """
    r AS (
        SELECT %(chain)s::smallint AS chain, %(user_id)s::bigint AS user_id,
               %(subject_key)s::text AS subject_key, %(version_id)s::bigint AS version_id,
               %(content_sha256)s::text AS content_sha256, %(decision)s::text AS decision,
               %(method)s::text AS method, %(locale)s::text AS locale,
               %(prompt_text)s::text AS prompt_text, %(delivery_id)s::bigint AS delivery_id,
               %(api_key_id)s::bigint AS api_key_id, %(context_sha256)s::text AS context_sha256,
               %(salt)s::text AS salt, %(ip)s::inet AS ip, %(user_agent)s::text AS user_agent,
               %(email)s::text AS email, %(external_id)s::text AS external_id,
               %(slug)s::text AS slug, %(seq)s::integer AS seq, %(uid)s::uuid AS uid,
               %(owner)s::bigint AS owner
    )"""
)


def append_decision(
    conn: Connection, fields: dict, context: dict, external_id: str, version: dict, owner
) -> tuple[dict | None, list[int]]:
    """Append a decision and queue its webhook events: (row or None if it exists, event ids)."""
    params = evidence.append_params(fields, context) | {
        "external_id": external_id,
        "slug": version["slug"],
        "seq": version["seq"],
        "uid": version["uid"],
        "owner": owner,
    }
    row = evidence.append(conn, APPEND_SQL, params)
    events = row.pop("event_ids")
    return (row, events) if row["id"] is not None else (None, [])


def create_version_events(conn: Connection, policy, version) -> list[int]:
    """Queue `version.published` for every key with a webhook URL (in the publish's transaction).

    Every key hears of it, scoped or not: a version applies to all users. A host that keeps
    users' pending answers drops them on this event.
    """
    payload = {
        "event": "version.published",
        "version": {
            "policy": policy.slug,
            "title": policy.title,
            "version": version.seq,
            "version_uid": str(version.uid),
            "effective_at": version.effective_at.isoformat(),
            "acceptance_mode": version.acceptance_mode,
            "material": version.verdict == "material",
            "summary": version.summary,
        },
    }
    rows = conn.execute(
        """
        INSERT INTO host_webhook_events (api_key_id, version_id, event, url, payload)
        SELECT s.api_key_id, %(version_id)s, 'version.published', s.webhook_url, %(payload)s
          FROM api_key_settings s
          JOIN api_keys k ON k.id = s.api_key_id
         WHERE s.webhook_url IS NOT NULL AND k.revoked_at IS NULL
        ON CONFLICT (api_key_id, version_id) DO NOTHING
        RETURNING id
    """,
        {"version_id": version.id, "payload": Jsonb(payload)},
    ).fetchall()
    return [r["id"] for r in rows]


def enqueue(event_ids: list[int]) -> None:
    """After COMMIT: one job per event; RQ retries with backoff when the host fails."""
    for event_id in event_ids:
        queues.queue("default").enqueue(
            deliver_host_webhook,
            event_id,
            job_id=f"host-webhook-{event_id}",
            retry=Retry(max=len(BACKOFF), interval=BACKOFF),
            job_timeout=TIMEOUT * 3,
        )


def deliver_host_webhook(event_id: int) -> int:
    """POST one event; a non-2xx answer or a network error raises so that RQ retries.

    A refused target (an internal address, see `post`) fails the event at once: retrying
    cannot help, since the event keeps the URL it was created with.
    """
    with db.connection() as conn:
        event = conn.execute(
            """
            SELECT e.*, s.webhook_secret
              FROM host_webhook_events e
              JOIN api_key_settings s ON s.api_key_id = e.api_key_id
             WHERE e.id = %(id)s
        """,
            {"id": event_id},
        ).fetchone()
    if event is None or event["state"] == "delivered":
        return 0
    body = json.dumps(event["payload"], separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "PolicyNotifier-Webhook/1",
        "X-PolicyNotifier-Event": event["event"],
        "X-PolicyNotifier-Delivery": str(event["id"]),
        "X-PolicyNotifier-Signature": sign(event["webhook_secret"], timestamp, body),
    }
    status, error, refused = None, None, False
    try:
        status = post(
            event["url"],
            body,
            headers,
            allow_private=current_app.config["HOST_WEBHOOK_ALLOW_PRIVATE"],
        )
    except Refused as exc:
        error, refused = f"refused: {exc}", True
    except socket.gaierror as exc:
        error = f"cannot resolve {urlsplit(event['url']).hostname}: {exc.strerror or exc}"
    except (http.client.HTTPException, OSError) as exc:
        error = (str(exc) or type(exc).__name__)[:500]
    ok = status is not None and 200 <= status < 300
    if status is not None and not ok:
        error = f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
    final = refused or event["attempts"] + 1 > len(BACKOFF)
    state = "delivered" if ok else ("failed" if final else "retrying")
    with db.connection() as conn:
        conn.execute(
            """
            UPDATE host_webhook_events
               SET attempts = attempts + 1, last_status = %(status)s, last_error = %(error)s,
                   last_attempt_at = now(), state = %(state)s
             WHERE id = %(id)s
        """,
            {"status": status, "error": error, "state": state, "id": event_id},
        )
    if refused and (job := get_current_job()) is not None:
        job.retries_left = 0  # RQ records the failure but does not retry it
    if not ok:
        raise RuntimeError(f"host webhook {event_id} to {event['url']} failed: {error}")
    return status


def list_events(conn: Connection, api_key_id: int, limit: int = 20) -> list[dict]:
    return conn.execute(
        """
        SELECT *
          FROM host_webhook_events
         WHERE api_key_id = %(key)s
      ORDER BY id DESC
         LIMIT %(limit)s
    """,
        {"key": api_key_id, "limit": limit},
    ).fetchall()


# --- where a webhook may go (docs: README, HOST_WEBHOOK_ALLOW_PRIVATE) ------------------------


def _kind(ip: IPAddress) -> str | None:
    """What makes `ip` an internal destination ("a loopback address"), or None if it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv6 form that carries an IPv4 address reaches that address: judge the IPv4 one.
        inner = ip.ipv4_mapped or ip.sixtofour
        if inner is None and ip in NAT64:
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
        if inner is not None:
            kind = _kind(inner)
            return f"{kind} ({inner})" if kind else None
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip in CGNAT:
        return "a shared (carrier-grade NAT) address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private or getattr(ip, "is_site_local", False):
        return "a private address"
    if not ip.is_global:
        return "a non-public address"
    return None


def _literal_ip(host: str) -> tuple[IPAddress | None, bool]:
    """(the address a host written as an IP means, whether it is written the usual way).

    The C resolver also reads 2130706433, 0177.0.0.1 or 0x7f.1 as 127.0.0.1; so do we.
    """
    try:
        return ipaddress.ip_address(host), True
    except ValueError:
        pass
    if INET_ATON_FORM.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host)), False  # parses, never looks up
        except OSError:
            pass
    return None, False


def url_problem(url: str, *, allow_private: bool) -> str | None:
    """Why `url` must not be a webhook target, judged without DNS; None when it may be.

    Host names are resolved and judged at send time (`resolve`), as DNS can change after saving.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        return f"it is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "it must start with https:// (or http://)"
    if parts.username is not None or parts.password is not None:
        return "it contains a user name or password (user:pass@); verify our signature instead"
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return "it has no host"
    ip, usual = _literal_ip(host)
    if ip is None and not HOST_NAME.fullmatch(host):
        return f"{host!r} is not a valid host name"
    if allow_private:
        return None
    if host == "localhost" or host.endswith(".localhost"):
        return f"{host} is this machine"
    kind = _kind(ip) if ip is not None else None
    if kind:
        return f"{host} is {kind}" if usual else f"{host} is {ip}, {kind}"
    return None


def resolve(parts: SplitResult, *, allow_private: bool) -> list[str]:
    """The host's addresses, refused if ANY of them is internal (a rebinding DNS may mix them)."""
    host = parts.hostname.rstrip(".")
    found = socket.getaddrinfo(host, parts.port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(sockaddr[0] for *_, sockaddr in found))
    if not allow_private:
        for address in addresses:
            kind = _kind(ipaddress.ip_address(address))
            if kind:
                raise Refused(f"{host} resolves to {address}, {kind}")
    return addresses


def _open(addresses: list[str], port: int, timeout: float) -> socket.socket:
    """A TCP connection to the first vetted address that answers (no further DNS lookup)."""
    error: OSError = OSError("no address to connect to")
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as exc:
            error = exc
    raise error


class PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to addresses vetted beforehand; the Host header still names the URL's host."""

    def __init__(self, host: str, port: int, addresses: list[str], **kwargs) -> None:
        super().__init__(host, port, **kwargs)
        self.addresses = addresses

    def connect(self) -> None:
        self.sock = _open(self.addresses, self.port, self.timeout)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As PinnedHTTPConnection, with TLS SNI and the certificate checked against the host name."""

    def __init__(self, host: str, port: int, addresses: list[str], **kwargs) -> None:
        self.tls = ssl.create_default_context()
        super().__init__(host, port, context=self.tls, **kwargs)
        self.addresses = addresses

    def connect(self) -> None:
        sock = _open(self.addresses, self.port, self.timeout)
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)


def post(url: str, body: bytes, headers: dict[str, str], *, allow_private: bool) -> int:
    """POST to a vetted address of `url`'s host and return the status; redirects are not followed.

    http.client is used directly: it never follows a redirect nor goes through a proxy, and
    connecting to the address we checked means a second DNS answer cannot swap it.
    """
    problem = url_problem(url, allow_private=allow_private)  # URLs saved before these rules
    if problem:
        raise Refused(problem)
    parts = urlsplit(url)
    addresses = resolve(parts, allow_private=allow_private)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)  # explicit: http.client misreads "::1" alone
    connection_class = PinnedHTTPSConnection if https else PinnedHTTPConnection
    conn = connection_class(parts.hostname, port, addresses, timeout=TIMEOUT)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("POST", target, body=body, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()
