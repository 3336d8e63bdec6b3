"""The API's decision write path: an acceptance or decline in two autocommit statements.

`acceptances.record` takes about ten statements (key, user, version, existing decision, superseded
check, notice delivery, chain lock, insert, webhooks) in the caller's transaction. Here one
read-only statement checks the key and resolves the user, the version, the version in force, an
existing decision and the notice delivery; Python checks the request and computes everything of
the row but the parts only the chain's head gives (id, previous hash, time); one statement
(`hostwebhooks.APPEND_SQL`, as on every decision path) locks the head, fills those in, hashes,
inserts the row, its context and its webhook events, moves the head and commits. No BEGIN or
COMMIT round trips, and the head is locked only for that one statement (synchronous_commit stays
on: evidence must be durable).
psycopg's pipeline mode was measured and dropped: it costs more client CPU than it saves.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import Connection

from . import acceptances, audience, fastpath, hostwebhooks
from .errors import Conflict, NotFound, Unauthorized, ValidationError


@dataclass(frozen=True)
class VersionRef:
    """A version named by uid, or by policy slug and number."""

    uid: str | None = None
    slug: str | None = None
    seq: int | None = None


def version_ref(data: dict) -> VersionRef:
    """The version named in a request body (422 if none is named, as `find_version`)."""
    uid, slug, seq = data.get("version_uid"), data.get("policy"), data.get("version")
    if isinstance(uid, str) and uid:
        try:
            parsed = str(uuid.UUID(uid))
        except ValueError:
            parsed = None
        # Only the canonical spelling matches, as `v.uid::text = lower(uid)` did.
        return VersionRef(uid=parsed if parsed == uid.lower() else "")
    if isinstance(slug, str) and isinstance(seq, int) and not isinstance(seq, bool):
        return VersionRef(slug=slug, seq=seq)
    raise ValidationError(
        "Name the version with version_uid, or with policy (slug) and version (number).",
        fields={"version_uid": "required unless policy and version are given"},
    )


# The key, the user it may see, the version, the version in force for that policy, an existing
# decision and the notice delivery. An existing decision is looked up by user: `version_id + 0`
# keeps the planner off `acceptances_version`, which it picked while the table's statistics
# were stale (analyzed empty; autovacuum off or not yet run) and then walked every decision on
# the version, so each append cost O(rows).
RESOLVE_SQL = """
    WITH k AS (
        SELECT k.id, k.revoked_at, coalesce(s.scoped, false) AS scoped,
               k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute' AS stale
          FROM api_keys k
     LEFT JOIN api_key_settings s ON s.api_key_id = k.id
         WHERE k.key_sha256 = %(sha)s
    ), u AS (
        SELECT u.id, u.email, u.locale, u.api_key_id
          FROM users u, k
         WHERE u.external_id = %(ext)s AND u.erased_at IS NULL AND k.revoked_at IS NULL
           AND (NOT k.scoped OR u.api_key_id = k.id)
    ), v AS (
        SELECT v.id, v.uid, v.seq, v.policy_id, v.content_sha256, v.effective_at,
               v.published_at, p.slug, p.title
          FROM policy_versions v
          JOIN policies p ON p.id = v.policy_id
         WHERE v.uid = %(uid)s::uuid
            OR (%(uid)s::uuid IS NULL AND p.slug = %(slug)s AND v.seq = %(seq)s)
    ), cur AS (
        SELECT c.id, c.seq, c.effective_at
          FROM v
          JOIN LATERAL (
              SELECT id, seq, effective_at
                FROM policy_versions
               WHERE policy_id = v.policy_id AND published_at IS NOT NULL
                 AND effective_at <= %(now)s
            ORDER BY effective_at DESC, seq DESC
               LIMIT 1
          ) c ON true
    )
    SELECT k.id AS key_id, k.revoked_at, k.stale,
           u.id AS user_id, u.email, u.locale AS user_locale, u.api_key_id AS user_key_id,
           v.id AS version_id, v.uid, v.seq, v.content_sha256, v.effective_at, v.published_at,
           v.slug, v.title,
           cur.id AS current_id, cur.seq AS current_seq, cur.effective_at AS current_effective_at,
           (SELECT a.id
              FROM acceptances a
             WHERE a.user_id = u.id AND a.version_id + 0 = v.id
               AND a.decision = %(decision)s) AS existing_id,
           (SELECT d.id
              FROM deliveries d
              JOIN notices dn ON dn.id = d.notice_id
             WHERE d.user_id = u.id AND dn.version_id = v.id
          ORDER BY d.state = 'delivered' DESC, d.id DESC
             LIMIT 1) AS notice_delivery_id,
           %(delivery)s::bigint IS NULL OR EXISTS (
               SELECT 1
                 FROM deliveries d
                 JOIN notices dn ON dn.id = d.notice_id
                WHERE d.id = %(delivery)s::bigint AND d.user_id = u.id AND dn.version_id = v.id
           ) AS delivery_ok
      FROM k
 LEFT JOIN u ON true
 LEFT JOIN v ON true
 LEFT JOIN cur ON true
"""

EXISTING_SQL = "SELECT * FROM acceptances WHERE id = %(id)s"


def decide(
    key_sha256: str,
    external_id: str,
    ref: VersionRef,
    *,
    decision: str,
    now: datetime,
    ip: str | None,
    user_agent: str,
    locale: str | None,
    prompt_text: str | None,
    delivery_id: int | None,
) -> tuple[dict, dict, bool, list[int]]:
    """Record an API decision: (row, version, created, webhook event ids), committed.

    Idempotent: the same (user, version, decision) returns the stored row, never a second.
    A dead pooled connection (the pool skips per-checkout checks) is retried once; that is safe
    even after the COMMIT was sent, because the retry then finds the row and answers 200.
    """
    for attempt in (1, 2):
        try:
            with fastpath.connection() as conn:
                return _decide(
                    conn,
                    key_sha256,
                    external_id,
                    ref,
                    decision=decision,
                    now=now,
                    ip=ip,
                    user_agent=user_agent,
                    locale=locale,
                    prompt_text=prompt_text,
                    delivery_id=delivery_id,
                )
        except psycopg.OperationalError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _resolve(conn: Connection, params: dict) -> dict:
    row = conn.execute(RESOLVE_SQL, params).fetchone()
    if row is None:
        raise Unauthorized("This API key is not valid.")
    if row["revoked_at"] is not None:
        raise Unauthorized("This API key was revoked.")
    if row["user_id"] is None:
        raise NotFound(f"No user with the external id {params['ext']!r}.")
    if row["version_id"] is None:
        raise NotFound("No such policy version.")
    return row


def _check_acceptable(row: dict, now: datetime) -> None:
    """As `acceptances.check_acceptable`, from the columns the resolve statement returned."""
    if row["published_at"] is None:
        raise Conflict(
            f"Version {row['seq']} of {row['title']} is a draft; only published "
            "versions can be accepted."
        )
    if row["effective_at"] > now or row["current_id"] == row["version_id"]:
        return
    raise Conflict(
        f"Version {row['seq']} of {row['title']} is superseded: version "
        f"{row['current_seq']} has been in force since {row['current_effective_at']:%Y-%m-%d}. "
        "Ask the user to accept that one."
    )


def _decide(conn: Connection, key_sha256: str, external_id: str, ref: VersionRef, **kw):
    decision, now = kw["decision"], kw["now"]
    params = {
        "sha": key_sha256,
        "ext": external_id,
        "uid": ref.uid or None,
        "slug": ref.slug,
        "seq": ref.seq,
        "now": now,
        "decision": decision,
        "delivery": kw["delivery_id"],
    }
    if ref.uid == "":  # not a UUID: no version can match
        params |= {"uid": None, "slug": None, "seq": None}
    row = _resolve(conn, params)
    if row["stale"]:  # a write per minute per key, not per request
        conn.execute(
            "UPDATE api_keys SET last_used_at = now() WHERE id = %(id)s", {"id": row["key_id"]}
        )
    version = {
        "id": row["version_id"],
        "uid": row["uid"],
        "seq": row["seq"],
        "slug": row["slug"],
        "title": row["title"],
    }
    if row["existing_id"] is not None:
        found = conn.execute(EXISTING_SQL, {"id": row["existing_id"]}).fetchone()
        return found, version, False, []
    _check_acceptable(row, now)
    if not row["delivery_ok"]:  # evidence must not claim to answer someone else's notice
        raise ValidationError(
            f"delivery_id {kw['delivery_id']} is not a notice delivery of this version to this "
            "user; leave it out and the latest one is found.",
            fields={"delivery_id": "a delivery of this version's notice to this user"},
        )
    prompt_text = kw["prompt_text"]
    fields = {
        "user_id": row["user_id"],
        "subject_key": audience.subject_key(external_id),
        "version_id": row["version_id"],
        "content_sha256": row["content_sha256"],
        "decision": decision,
        "method": "api",
        "locale": (kw["locale"] or row["user_locale"] or "")[:35],
        "prompt_text": (
            prompt_text
            if prompt_text is not None
            else acceptances.DEFAULT_PROMPT.format(title=row["title"])
        )[:2000],
        "delivery_id": (
            row["notice_delivery_id"] if kw["delivery_id"] is None else kw["delivery_id"]
        ),
        "api_key_id": row["key_id"],
    }
    context = {
        "ip": kw["ip"],
        "user_agent": (kw["user_agent"] or "")[:1000],
        "email": row["email"],
    }
    inserted, events = hostwebhooks.append_decision(
        conn, fields, context, external_id, version, row["user_key_id"]
    )
    if inserted is None:  # a concurrent request with the same decision committed first
        found = acceptances.existing(conn, row["user_id"], row["version_id"], decision)
        return found, version, False, []
    return inserted, version, True, events
