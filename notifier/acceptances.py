"""What a user must accept now, and recording their decisions (explicit, email link, implied)."""

from __future__ import annotations

import ipaddress
import json
from datetime import datetime

from flask import current_app, request
from psycopg import Connection

from . import audience, hostwebhooks, pendingcache
from .errors import Conflict, NotFound, ValidationError
from .pending import DEFAULT_PROMPT, FIRST_PROMPT, default_prompt  # noqa: F401 - re-exported
from .pending import answer as pending_answer

DECISIONS = ("accepted", "declined")
METHODS = ("click", "email_link", "api", "implied")
IMPLIED_PROMPT = (
    "Notice of the update to our {title} (effective {date}); continued use after that date "
    "means you accept it."
)
IMPLIED_PROMPT_FIRST = (  # version 1: nothing was updated
    "Notice of our {title} (effective {date}); continued use after that date means you accept it."
)

_BASES: dict[tuple, str] = {}


def _base_key(env: dict) -> tuple:
    return (
        env.get("wsgi.url_scheme"),
        env.get("HTTP_HOST"),
        env.get("SERVER_NAME"),
        env.get("SERVER_PORT"),
        env.get("SCRIPT_NAME"),
    )


def known_url_root(env: dict) -> str | None:
    """`url_root()` for a WSGI environ, if a request through Flask already worked it out."""
    return _BASES.get(_base_key(env))


def url_root() -> str:
    """`request.url_root`, kept per (scheme, host, script root): werkzeug rebuilds it each time."""
    key = _base_key(request.environ)
    found = _BASES.get(key)
    if found is None:
        if len(_BASES) > 1_000:  # the Host header is the client's: keep this bounded
            _BASES.clear()
        found = _BASES[key] = request.url_root
    return found


def pending(conn: Connection, external_id: str, scope: int | None, now: datetime) -> dict:
    """The prompts this user must see now, their decisions read on `conn` (so a write just
    committed on it shows); NotFound when the user is unknown to this key. The catalog comes
    from this process's cache when it has a current one: its changes are announced in the
    writing transaction. (The API's hot path answers wholly from memory: `pendingcache`.)"""
    cache = pendingcache.for_app()
    catalog = cache.catalog(now) if cache is not None else None
    body = pending_answer(conn, external_id, scope, now, url_root(), catalog)
    if body is None:
        raise NotFound(f"No user with the external id {external_id!r}.")
    return json.loads(body)


def find_version(conn: Connection, data: dict) -> dict:
    """A version named by {"version_uid"} or {"policy", "version"}; 404/422 otherwise."""
    uid, slug, seq = data.get("version_uid"), data.get("policy"), data.get("version")
    if isinstance(uid, str) and uid:
        if not audience.encodable(uid):  # no version has such a uid (PostgreSQL: no NUL)
            raise NotFound("No such policy version.")
        where, params = "v.uid::text = %(uid)s", {"uid": uid.lower()}
    elif isinstance(slug, str) and isinstance(seq, int) and not isinstance(seq, bool):
        if not audience.encodable(slug):
            raise NotFound("No such policy version.")
        where, params = "p.slug = %(slug)s AND v.seq = %(seq)s", {"slug": slug, "seq": seq}
    else:
        raise ValidationError(
            "Name the version with version_uid, or with policy (slug) and version (number).",
            fields={"version_uid": "required unless policy and version are given"},
        )
    row = conn.execute(
        f"""
        SELECT v.id, v.uid, v.seq, v.policy_id, v.content_sha256, v.effective_at,
               v.published_at, v.acceptance_mode, v.verdict, v.summary, p.slug, p.title
          FROM policy_versions v
          JOIN policies p ON p.id = v.policy_id
         WHERE {where}
    """,  # noqa: S608 - `where` is one of two constant strings
        params,
    ).fetchone()
    if row is None:
        raise NotFound("No such policy version.")
    return row


def check_acceptable(conn: Connection, version: dict, now: datetime) -> None:
    """Only the version in force or an upcoming one can be accepted (409 otherwise)."""
    if version["published_at"] is None:
        raise Conflict(
            f"Version {version['seq']} of {version['title']} is a draft; only published "
            "versions can be accepted."
        )
    if version["effective_at"] > now:
        return
    current = conn.execute(
        """
        SELECT id, seq, effective_at
          FROM policy_versions
         WHERE policy_id = %(policy_id)s AND published_at IS NOT NULL AND effective_at <= %(now)s
      ORDER BY effective_at DESC, seq DESC
         LIMIT 1
    """,
        {"policy_id": version["policy_id"], "now": now},
    ).fetchone()
    if current["id"] != version["id"]:
        raise Conflict(
            f"Version {version['seq']} of {version['title']} is superseded: version "
            f"{current['seq']} has been in force since {current['effective_at']:%Y-%m-%d}. "
            "Ask the user to accept that one."
        )


def normalise_ip(value) -> str | None:
    if value in (None, ""):
        return None
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError as exc:
        raise ValidationError(
            f"ip is not an IP address: {value!r}.", fields={"ip": "an IPv4 or IPv6 address"}
        ) from exc


def has_deliveries(conn: Connection) -> bool:
    """Whether the notices schema (deliveries) is installed; checked once per process."""
    cache = current_app.extensions.setdefault("acceptance_cache", {})
    if "deliveries" not in cache:
        row = conn.execute("SELECT to_regclass('public.deliveries') IS NOT NULL AS ok").fetchone()
        cache["deliveries"] = row["ok"]
    return cache["deliveries"]


def notice_delivery(conn: Connection, user_id: int, version_id: int) -> dict | None:
    """The latest notice email about this version sent to this user, delivered first."""
    if not has_deliveries(conn):
        return None
    return conn.execute(
        """
        SELECT d.id, d.state
          FROM deliveries d
          JOIN notices n ON n.id = d.notice_id
         WHERE d.user_id = %(user_id)s AND n.version_id = %(version_id)s
      ORDER BY d.state = 'delivered' DESC, d.id DESC
         LIMIT 1
    """,
        {"user_id": user_id, "version_id": version_id},
    ).fetchone()


def existing(conn: Connection, user_id: int, version_id: int, decision: str) -> dict | None:
    return conn.execute(
        """
        SELECT *
          FROM acceptances
         WHERE user_id = %(user_id)s AND version_id + 0 = %(version_id)s
           AND decision = %(decision)s
    """,  # `+ 0`: by user, never by version, whatever the statistics say (see decisions.py)
        {"user_id": user_id, "version_id": version_id, "decision": decision},
    ).fetchone()


def record(
    conn: Connection,
    user: dict,
    version: dict,
    *,
    decision: str,
    method: str,
    now: datetime,
    ip: str | None = None,
    user_agent: str = "",
    locale: str | None = None,
    prompt_text: str | None = None,
    delivery_id: int | None = None,
    api_key_id: int | None = None,
) -> tuple[dict, bool, list[int]]:
    """Record a decision in the caller's transaction: (row, created, webhook event ids).

    Idempotent: the same (user, version, decision) returns the stored row, never a second.
    """
    assert decision in DECISIONS and method in METHODS
    found = existing(conn, user["id"], version["id"], decision)
    if found:
        return found, False, []
    check_acceptable(conn, version, now)
    if delivery_id is None:
        delivery = notice_delivery(conn, user["id"], version["id"])
        delivery_id = delivery["id"] if delivery else None
    fields = {
        "user_id": user["id"],
        "subject_key": audience.subject_key(user["external_id"]),
        "version_id": version["id"],
        "content_sha256": version["content_sha256"],
        "decision": decision,
        "method": method,
        "locale": (locale or user["locale"] or "")[:35],
        "prompt_text": (
            prompt_text
            if prompt_text is not None
            else default_prompt(version["title"], version["seq"])
        )[:2000],
        "delivery_id": delivery_id,
        "api_key_id": api_key_id,
    }
    context = {"ip": ip, "user_agent": (user_agent or "")[:1000], "email": user["email"]}
    row, events = hostwebhooks.append_decision(
        conn, fields, context, user["external_id"], version, user["api_key_id"]
    )
    if row is None:  # a concurrent request recorded it first
        return existing(conn, user["id"], version["id"], decision), False, []
    return row, True, events


def record_activity(conn: Connection, user: dict, now: datetime) -> dict:
    """Implied acceptances due on activity: notice-mode versions in force, not yet accepted.

    A material version is implied only if this user's notice email is recorded as delivered.
    """
    rows = conn.execute(
        """
        SELECT v.id, v.uid, v.seq, v.policy_id, v.content_sha256, v.effective_at,
               v.published_at, v.acceptance_mode, v.verdict, v.summary, p.slug, p.title
          FROM policies p
          JOIN LATERAL (
              SELECT *
                FROM policy_versions
               WHERE policy_id = p.id AND published_at IS NOT NULL AND effective_at <= %(now)s
            ORDER BY effective_at DESC, seq DESC
               LIMIT 1
          ) v ON true
         WHERE v.acceptance_mode = 'notice'
           AND NOT EXISTS (
               SELECT 1
                 FROM acceptances a
                WHERE a.user_id = %(user_id)s AND a.version_id = v.id AND a.decision = 'accepted'
           )
      ORDER BY p.slug
    """,
        {"now": now, "user_id": user["id"]},
    ).fetchall()
    implied, refused, events = [], [], []
    for version in rows:
        delivery = notice_delivery(conn, user["id"], version["id"])
        if version["verdict"] == "material" and not (delivery and delivery["state"] == "delivered"):
            refused.append(
                {
                    "policy": version["slug"],
                    "version": version["seq"],
                    "reason": "material change and the notice email to this user is not "
                    "recorded as delivered; ask for explicit acceptance",
                }
            )
            continue
        row, created, new_events = record(
            conn,
            user,
            version,
            decision="accepted",
            method="implied",
            now=now,
            prompt_text=(IMPLIED_PROMPT_FIRST if version["seq"] == 1 else IMPLIED_PROMPT).format(
                title=version["title"], date=f"{version['effective_at']:%Y-%m-%d}"
            ),
            delivery_id=delivery["id"] if delivery else None,
        )
        if created:
            implied.append(
                row
                | {
                    "policy": version["slug"],
                    "version": version["seq"],
                    "version_uid": version["uid"],
                }
            )
            events += new_events
    return {"implied": implied, "refused": refused, "events": events}


def list_for_user(conn: Connection, user_id: int) -> list[dict]:
    return conn.execute(
        """
        SELECT a.*, p.slug AS policy, v.seq AS version, v.uid AS version_uid
          FROM acceptances a
          JOIN policy_versions v ON v.id = a.version_id
          JOIN policies p ON p.id = v.policy_id
         WHERE a.user_id = %(user_id)s
      ORDER BY a.id
    """,
        {"user_id": user_id},
    ).fetchall()


def acceptance_json(row: dict, version: dict | None = None) -> dict:
    return {
        "id": row["id"],
        "policy": row.get("policy") or (version or {}).get("slug"),
        "version": row.get("version") or (version or {}).get("seq"),
        "version_uid": str(row.get("version_uid") or (version or {}).get("uid")),
        "decision": row["decision"],
        "method": row["method"],
        "recorded_at": row["recorded_at"].isoformat(),
        "content_sha256": row["content_sha256"],
        "locale": row["locale"],
        "prompt_text": row["prompt_text"],
        "delivery_id": row["delivery_id"],
        "row_hash": row["row_hash"],
    }
