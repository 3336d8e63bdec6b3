"""What a user must accept now, and recording their decisions (explicit, email link, implied)."""

from __future__ import annotations

import ipaddress
import json
from datetime import datetime
from urllib.parse import quote

from flask import current_app, request
from psycopg import Connection

from . import audience, db, hostwebhooks
from .errors import Conflict, NotFound, Unauthorized, ValidationError

DECISIONS = ("accepted", "declined")
METHODS = ("click", "email_link", "api", "implied")
DEFAULT_PROMPT = "We have updated our {title}. Please review what changed and accept to continue."
IMPLIED_PROMPT = (
    "Notice of the update to our {title} (effective {date}); continued use after that date "
    "means you accept it."
)

# One round trip: the user, and per policy the first of (version in force, upcoming version)
# that asks for acceptance and that this user has not accepted, as the finished JSON document
# (the API's hot path sends PostgreSQL's text as it is). Timestamps are ISO 8601 in the
# session's time zone, which both pools set to UTC. `base` is the request's URL root and
# `accept` this user's acceptance URL; `tests/test_acceptance.py` checks the links against
# `url_for`.
PENDING_SQL = """
    SELECT u.id AS user_id,
           json_build_object(
               'external_id', u.external_id,
               'pending', coalesce(json_agg(i.item ORDER BY i.title, i.slug)
                                   FILTER (WHERE i.item IS NOT NULL), '[]'::json),
               'blocking', coalesce(bool_or(i.blocking), false)
           )::text AS body
      FROM users u
 LEFT JOIN LATERAL (
           SELECT c.title, c.slug, c.blocking,
                  json_build_object(
                      'policy', c.slug,
                      'title', c.title,
                      'version', c.seq,
                      'version_uid', c.uid,
                      'summary', c.summary,
                      'effective_at', c.effective_at,
                      'in_force', c.effective_at <= %(now)s,
                      'mode', c.acceptance_mode,
                      'material', c.verdict = 'material',
                      'blocking', c.blocking,
                      'blocks_at', CASE WHEN c.explicit THEN c.blocks_at END,
                      'declined_at', c.declined_at,
                      'prompt', replace(%(prompt)s::text, '{title}', c.title),
                      'links', json_build_object(
                          'text', c.text_url,
                          'redline', c.text_url || '/changes',
                          'accept', %(accept)s::text
                      )
                  ) AS item
             FROM (
               SELECT DISTINCT ON (c.policy_id)
                      c.*, d.recorded_at AS declined_at,
                      %(base)s::text || 'policies/' || c.slug || '/versions/' || c.seq
                          AS text_url,
                      c.effective_at + coalesce(c.grace, interval '0') AS blocks_at,
                      c.acceptance_mode = 'explicit' AS explicit,
                      c.acceptance_mode = 'explicit'
                          AND %(now)s >= c.effective_at + coalesce(c.grace, interval '0')
                          AS blocking
                 FROM (
                   SELECT v.*, p.slug, p.title, 0 AS rank, g.grace
                     FROM policies p
                     JOIN LATERAL (
                         SELECT id, uid, seq, summary, effective_at, acceptance_mode,
                                verdict, policy_id
                           FROM policy_versions
                          WHERE policy_id = p.id AND published_at IS NOT NULL
                            AND effective_at <= %(now)s
                       ORDER BY effective_at DESC, seq DESC
                          LIMIT 1
                     ) v ON true
                LEFT JOIN version_grace g ON g.version_id = v.id
                UNION ALL
                   SELECT v.*, p.slug, p.title, 1 AS rank, g.grace
                     FROM policies p
                     JOIN LATERAL (
                         SELECT id, uid, seq, summary, effective_at, acceptance_mode,
                                verdict, policy_id
                           FROM policy_versions
                          WHERE policy_id = p.id AND published_at IS NOT NULL
                            AND effective_at > %(now)s
                       ORDER BY effective_at, seq
                          LIMIT 1
                     ) v ON true
                LEFT JOIN version_grace g ON g.version_id = v.id
                 ) c
            LEFT JOIN acceptances d
                   ON d.user_id = u.id AND d.version_id = c.id AND d.decision = 'declined'
                WHERE c.acceptance_mode <> 'none'
                  AND NOT EXISTS (
                      SELECT 1
                        FROM acceptances a
                       WHERE a.user_id = u.id AND a.version_id = c.id
                         AND a.decision = 'accepted'
                  )
             ORDER BY c.policy_id, c.rank
           ) c
      ) i ON true
     WHERE u.external_id = %(ext)s AND u.erased_at IS NULL
       AND (%(scope)s::bigint IS NULL OR u.api_key_id = %(scope)s)
  GROUP BY u.id
"""

# The API's hot path: the key check and the pending document in one round trip.
KEYED_PENDING_SQL = (
    """
    WITH k AS (
        SELECT k.id, k.revoked_at, coalesce(s.scoped, false) AS scoped,
               k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute' AS stale
          FROM api_keys k
     LEFT JOIN api_key_settings s ON s.api_key_id = k.id
         WHERE k.key_sha256 = %(sha)s
    )
    SELECT k.id AS key_id, k.revoked_at, k.stale, p.user_id, p.body
      FROM k
 LEFT JOIN LATERAL ("""
    + PENDING_SQL.replace("%(scope)s", "(CASE WHEN k.scoped THEN k.id END)")
    + """) p ON true
"""
)
# Both are over psycopg's 4 KB parse-cache limit as written.
PENDING_SQL, KEYED_PENDING_SQL = db.compact(PENDING_SQL), db.compact(KEYED_PENDING_SQL)

# werkzeug's quoting of a path segment (`BaseConverter.to_url`).
_SEGMENT_SAFE = "!$&'()*+,/:;=@"
_BASES: dict[tuple, str] = {}


def _url_root() -> str:
    """`request.url_root`, kept per (scheme, host, script root): werkzeug rebuilds it each time."""
    env = request.environ
    key = (
        env.get("wsgi.url_scheme"),
        env.get("HTTP_HOST"),
        env.get("SERVER_NAME"),
        env.get("SERVER_PORT"),
        env.get("SCRIPT_NAME"),
    )
    found = _BASES.get(key)
    if found is None:
        if len(_BASES) > 1_000:  # the Host header is the client's: keep this bounded
            _BASES.clear()
        found = _BASES[key] = request.url_root
    return found


def pending_params(external_id: str, now: datetime) -> dict:
    base = _url_root()
    return {
        "ext": external_id,
        "now": now,
        "base": base,
        "accept": f"{base}api/v1/users/{quote(external_id, safe=_SEGMENT_SAFE)}/acceptances",
        "prompt": DEFAULT_PROMPT,
    }


def pending(conn: Connection, external_id: str, scope: int | None, now: datetime) -> dict:
    """The prompts this user must see now; NotFound when the user is unknown to this key."""
    row = conn.execute(PENDING_SQL, pending_params(external_id, now) | {"scope": scope}).fetchone()
    if row is None:
        raise NotFound(f"No user with the external id {external_id!r}.")
    return json.loads(row["body"])


def pending_for_key(conn: Connection, key_sha256: str, external_id: str, now: datetime) -> str:
    """`pending` for the API, as JSON text: authenticates the key in the same statement."""
    row = conn.execute(
        KEYED_PENDING_SQL, pending_params(external_id, now) | {"sha": key_sha256}
    ).fetchone()
    if row is None:
        raise Unauthorized("This API key is not valid.")
    if row["revoked_at"] is not None:
        raise Unauthorized("This API key was revoked.")
    if row["stale"]:
        conn.execute(
            "UPDATE api_keys SET last_used_at = now() WHERE id = %(id)s", {"id": row["key_id"]}
        )
    if row["user_id"] is None:
        raise NotFound(f"No user with the external id {external_id!r}.")
    return row["body"]


def find_version(conn: Connection, data: dict) -> dict:
    """A version named by {"version_uid"} or {"policy", "version"}; 404/422 otherwise."""
    uid, slug, seq = data.get("version_uid"), data.get("policy"), data.get("version")
    if isinstance(uid, str) and uid:
        where, params = "v.uid::text = %(uid)s", {"uid": uid.lower()}
    elif isinstance(slug, str) and isinstance(seq, int) and not isinstance(seq, bool):
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
            else DEFAULT_PROMPT.format(title=version["title"])
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
            prompt_text=IMPLIED_PROMPT.format(
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
