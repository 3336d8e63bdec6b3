"""The API's decision write path: acceptances and declines, a batch per transaction.

`acceptances.record` takes several statements (existing decision, superseded check, notice
delivery, append) in the caller's transaction. Here one statement (`DECIDE_SQL`) takes the
decisions this process's threads asked for at about the same time (`groupcommit`: one alone
when nothing else is waiting) and, for each, checks the key, resolves the user, the version,
the version in force, an existing decision and the notice delivery; the decisions whose checks
all pass are appended to the evidence chains (`evidence.APPEND_BATCH_CTES`, the batch form of
the append every decision path shares: lock the heads, hash, insert rows, contexts and webhook
events, move the heads), and all is committed at once: one call of a function of the session
that locks the heads first (`LOCK_HEADS_SQL`), then runs the statement (`configure`,
`DECIDE_FUNCTION`). Python computes only what a request alone gives (subject key, salt, the
head of the context digest) and, for a request that wrote nothing, reads the same resolved
columns to answer 401/404/409/422 or the existing row.

Why batches: a decision's database time was mostly per statement (locks on a dozen relations,
executor set-up of a large plan, the commit), not per row; at four decisions per statement
PostgreSQL spent about half as much on each (BENCHMARKS_pending.md). synchronous_commit stays
on: evidence must be durable. psycopg's pipeline mode was measured and dropped: it costs more
client CPU than it saves.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

import psycopg
from flask import current_app
from psycopg import Connection

from . import (
    acceptances,
    audience,
    db,
    evidence,
    fastpath,
    groupcommit,
    hostwebhooks,
    pendingcache,
)
from .errors import (
    BIGINT_MAX,
    Conflict,
    NotFound,
    NotifierError,
    Unauthorized,
    ValidationError,
)

log = logging.getLogger(__name__)


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
        if not audience.encodable(slug):  # no policy has such a slug (PostgreSQL: no NUL)
            return VersionRef(uid="")
        return VersionRef(slug=slug, seq=seq)
    raise ValidationError(
        "Name the version with version_uid, or with policy (slug) and version (number).",
        fields={"version_uid": "required unless policy and version are given"},
    )


@dataclass(frozen=True)
class Request:
    """A decision as the host sent it, checked (`parse_request`)."""

    decision: str
    ref: VersionRef
    ip: str | None
    user_agent: str
    locale: str | None
    prompt_text: str | None
    delivery_id: int | None


def parse_request(data: dict, decision: str) -> Request:
    """The decision in a request body (for `decision`, its endpoint's unless the body names one),
    or ValidationError saying what is wrong."""
    for name in ("user_agent", "prompt_text", "locale"):
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ValidationError(f"{name} must be a string.", fields={name: "a string"})
        # Sent to PostgreSQL with the key check, so refused here whatever the user and version.
        if not audience.encodable(value):
            raise ValidationError(
                f"{name} contains a NUL character or an unpaired surrogate.",
                fields={name: "text without NUL or unpaired surrogates"},
            )
    delivery = data.get("delivery_id")
    if delivery is not None and (
        not isinstance(delivery, int)
        or isinstance(delivery, bool)
        or not 0 < delivery <= BIGINT_MAX
    ):
        raise ValidationError(
            "delivery_id must be a positive integer.", fields={"delivery_id": "positive integer"}
        )
    if "decision" in data:
        if data["decision"] not in ("accepted", "declined"):
            raise ValidationError(
                "decision must be 'accepted' or 'declined'.",
                fields={"decision": "accepted or declined"},
            )
        decision = data["decision"]
    return Request(
        decision=decision,
        ip=acceptances.normalise_ip(data.get("ip")),
        ref=version_ref(data),
        user_agent=data.get("user_agent") or "",
        locale=data.get("locale"),
        prompt_text=data.get("prompt_text"),
        delivery_id=delivery,
    )


# The decisions of a batch (`i`: one JSON object per request, `BATCH_COLUMNS`), each resolved
# as one request alone would be: the key, the user it may see, the version, the version in force
# for that policy, an existing decision and the notice delivery (`q`, one row per request, in
# order), and the rows to append, those whose checks all pass (`r`). An existing decision is
# looked up by user: `version_id + 0` keeps the planner off `acceptances_version`, which it
# picked while the table's statistics were stale (analyzed empty; autovacuum off or not yet
# run) and then walked every decision on the version, so each append cost O(rows). The locale
# and prompt defaults, the chain and the context digest's email are filled in here, as
# `acceptances.record` does in Python (`evidence.json_ascii_sql` writes the email as json.dumps
# does). The same decision twice in one batch is appended once (the first; the other answers
# with it after the commit).
DEFAULT_PROMPT_SQL = (  # as `pending.default_prompt`
    "CASE WHEN q.seq = 1 THEN '"
    + acceptances.FIRST_PROMPT.replace("'", "''")
    + "' ELSE '"
    + acceptances.DEFAULT_PROMPT.replace("'", "''")
    + "' END"
)
BATCH_COLUMNS = {
    "sha": "text",
    "ext": "text",
    "uid": "uuid",
    "slug": "text",
    "seq": "integer",
    "now": "timestamptz",
    "decision": "text",
    "delivery": "bigint",
    "locale": "text",
    "prompt_text": "text",
    "subject_key": "text",
    "salt": "text",
    "ip": "inet",
    "user_agent": "text",
    "context_head": "text",
}
# The batch is one JSON array of objects (`batch_params`): one parameter that psycopg sends as
# it is, where an array per column cost it ~10% of a decision's Python (a list dumper each).
BATCH_RECORD = ", ".join(f"{name} {kind}" for name, kind in BATCH_COLUMNS.items())
DECIDE_SOURCE = f"""
    i AS (
        SELECT *
          FROM ROWS FROM (json_to_recordset(%(batch)s::json) AS ({BATCH_RECORD}))
               WITH ORDINALITY AS i ({", ".join("in_" + name for name in BATCH_COLUMNS)}, ord)
    ), q AS (
        SELECT i.*, k.id AS key_id, k.revoked_at, k.stale,
               u.id AS user_id, u.email, u.locale AS user_locale, u.api_key_id AS user_key_id,
               v.id AS version_id, v.uid, v.seq, v.content_sha256, v.effective_at,
               v.published_at, v.slug, v.title,
               cur.id AS current_id, cur.seq AS current_seq,
               cur.effective_at AS current_effective_at,
               (SELECT a.id
                  FROM acceptances a
                 WHERE a.user_id = u.id AND a.version_id + 0 = v.id
                   AND a.decision = i.in_decision) AS existing_id,
               (SELECT d.id
                  FROM deliveries d
                  JOIN notices dn ON dn.id = d.notice_id
                 WHERE d.user_id = u.id AND dn.version_id = v.id
              ORDER BY d.state = 'delivered' DESC, d.id DESC
                 LIMIT 1) AS notice_delivery_id,
               i.in_delivery IS NULL OR EXISTS (
                   SELECT 1
                     FROM deliveries d
                     JOIN notices dn ON dn.id = d.notice_id
                    WHERE d.id = i.in_delivery AND d.user_id = u.id AND dn.version_id = v.id
               ) AS delivery_ok
          FROM i
     LEFT JOIN LATERAL (
               SELECT k.id, k.revoked_at, coalesce(s.scoped, false) AS scoped,
                      k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute'
                          AS stale
                 FROM api_keys k
            LEFT JOIN api_key_settings s ON s.api_key_id = k.id
                WHERE k.key_sha256 = i.in_sha
          ) k ON true
     LEFT JOIN LATERAL (
               SELECT u.id, u.email, u.locale, u.api_key_id
                 FROM users u
                WHERE u.external_id = i.in_ext AND u.erased_at IS NULL
                  AND k.id IS NOT NULL AND k.revoked_at IS NULL
                  AND (NOT k.scoped OR u.api_key_id = k.id)
          ) u ON true
     LEFT JOIN LATERAL (
               SELECT v.id, v.uid, v.seq, v.policy_id, v.content_sha256, v.effective_at,
                      v.published_at, p.slug, p.title
                 FROM policy_versions v
                 JOIN policies p ON p.id = v.policy_id
                WHERE v.uid = i.in_uid
                   OR (i.in_uid IS NULL AND p.slug = i.in_slug AND v.seq = i.in_seq)
          ) v ON true
     LEFT JOIN LATERAL (
               SELECT id, seq, effective_at
                 FROM policy_versions
                WHERE policy_id = v.policy_id AND published_at IS NOT NULL
                  AND effective_at <= i.in_now
             ORDER BY effective_at DESC, seq DESC
                LIMIT 1
          ) cur ON true
    ), r AS (
        SELECT DISTINCT ON (q.user_id, q.version_id, q.in_decision)
               q.ord, mod(q.user_id, {evidence.CHAINS}) AS chain, q.user_id,
               q.in_subject_key AS subject_key, q.version_id, q.content_sha256,
               q.in_decision AS decision, 'api'::text AS method,
               left(coalesce(nullif(q.in_locale, ''), nullif(q.user_locale, ''), ''), 35)
                   AS locale,
               left(coalesce(q.in_prompt_text,
                             replace({DEFAULT_PROMPT_SQL}, '{{title}}', q.title)), 2000)
                   AS prompt_text,
               coalesce(q.in_delivery, q.notice_delivery_id) AS delivery_id,
               q.key_id AS api_key_id,
               encode(sha256(convert_to(
                   q.in_context_head || ',' || {evidence.json_ascii_sql("q.email")} || ']',
                   'UTF8')), 'hex') AS context_sha256,
               q.in_salt AS salt, q.in_ip AS ip, q.in_user_agent AS user_agent,
               q.email, q.in_ext AS external_id, q.slug, q.seq, q.uid, q.user_key_id AS owner
          FROM q
         WHERE q.key_id IS NOT NULL AND q.revoked_at IS NULL AND q.user_id IS NOT NULL
           AND q.version_id IS NOT NULL AND q.existing_id IS NULL
           AND q.published_at IS NOT NULL
           AND (q.effective_at > q.in_now OR q.current_id = q.version_id)
           AND q.delivery_ok
      ORDER BY q.user_id, q.version_id, q.in_decision, q.ord
    )"""
# What Python reads for each request, in order: the inserted row `a.*` (all NULL if none), its
# webhook events, and the resolved columns that answer 401/404/409/422 or name the existing row.
DECIDE_SQL = db.compact(
    "WITH RECURSIVE "
    + evidence.append_batch_sql(
        DECIDE_SOURCE,
        hostwebhooks.WEBHOOK_CTES_TEMPLATE.format(join="JOIN n AS r ON r.id = a.id"),
    )
    + """
    SELECT q.ord, NOT (SELECT all_heads FROM held) AS heads_missing,
           a.*, ARRAY(SELECT w.id FROM w WHERE w.acceptance_id = a.id ORDER BY w.id) AS event_ids,
           q.key_id, q.revoked_at, q.stale, q.user_id AS found_user_id,
           q.version_id AS found_version_id, q.uid, q.seq, q.slug, q.title, q.published_at,
           q.effective_at, q.current_id, q.current_seq, q.current_effective_at, q.existing_id,
           q.delivery_ok
      FROM q
 LEFT JOIN n ON n.ord = q.ord
 LEFT JOIN a ON a.id = n.id
  ORDER BY q.ord
"""
)
DECIDE = db.RawStatement(DECIDE_SQL)  # `$1`, as the function's body needs (`configure`)

EXISTING_SQL = "SELECT * FROM acceptances WHERE id = %(id)s"


def decide(
    key_sha256: str, external_id: str, asked: Request, now: datetime
) -> tuple[dict, dict, bool, list[int]]:
    """Record an API decision: (row, version, created, webhook event ids), committed.

    Idempotent: the same (user, version, decision) returns the stored row, never a second.
    Written together with the decisions this process's other threads asked for meanwhile
    (`groupcommit`; `_run_batch`), each answered as if it had been alone.
    """
    params = decide_params(
        key_sha256,
        external_id,
        asked.ref,
        decision=asked.decision,
        now=now,
        ip=asked.ip,
        user_agent=asked.user_agent,
        locale=asked.locale,
        prompt_text=asked.prompt_text,
        delivery_id=asked.delivery_id,
    )
    return db.per_process(current_app, "decisions", _combiner).submit(params)


def _combiner() -> groupcommit.Combiner:
    return groupcommit.Combiner(_run_batch)


def decide_params(key_sha256: str, external_id: str, ref: VersionRef, **kw) -> dict:
    """`DECIDE_SQL`'s parameters: the request's values and what Python derives from them."""
    salt = secrets.token_hex(16)
    user_agent = (kw["user_agent"] or "")[:1000]
    uid, slug, seq = ref.uid or None, ref.slug, ref.seq
    if ref.uid == "":  # not a UUID: no version can match
        uid = slug = seq = None
    return {
        "sha": key_sha256,
        "ext": external_id,
        "uid": uid,
        "slug": slug,
        "seq": seq,
        "now": kw["now"],
        "decision": kw["decision"],
        "delivery": kw["delivery_id"],
        "locale": kw["locale"],
        "prompt_text": kw["prompt_text"],
        "subject_key": audience.subject_key(external_id),
        "salt": salt,
        "ip": kw["ip"],
        "user_agent": user_agent,
        "context_head": evidence.context_head(salt, kw["ip"], user_agent),
    }


def _check_found(row: dict, external_id: str) -> None:
    """The key (401), then the user and the version (404)."""
    if row["key_id"] is None:
        raise Unauthorized("This API key is not valid.")
    if row["revoked_at"] is not None:
        raise Unauthorized("This API key was revoked.")
    if row["found_user_id"] is None:
        raise NotFound(f"No user with the external id {external_id!r}.")
    if row["found_version_id"] is None:
        raise NotFound("No such policy version.")


def _check_acceptable(row: dict, now: datetime) -> None:
    """As `acceptances.check_acceptable`, from the columns the statement resolved."""
    if row["published_at"] is None:
        raise Conflict(
            f"Version {row['seq']} of {row['title']} is a draft; only published "
            "versions can be accepted."
        )
    if row["effective_at"] > now or row["current_id"] == row["found_version_id"]:
        return
    raise Conflict(
        f"Version {row['seq']} of {row['title']} is superseded: version "
        f"{row['current_seq']} has been in force since {row['current_effective_at']:%Y-%m-%d}. "
        "Ask the user to accept that one."
    )


def _run_batch(batch: list[dict]) -> list:
    """Each request's outcome: (row, version, created, event ids), or the error to answer with.

    If the batch fails as a whole and holds more than one request, each is retried alone, so
    that a request the database refuses fails by itself.
    """
    try:
        outcomes = _write(batch)
    except psycopg.Error as exc:
        if len(batch) == 1:
            raise
        log.warning("decisions: a batch of %d failed (%s); writing each alone", len(batch), exc)
        outcomes = []
        for params in batch:
            try:
                outcomes.extend(_write([params]))
            except psycopg.Error as alone:
                outcomes.append(alone)
    # Committed: tell every process's pending cache, with the connection back in the pool.
    # Also when the row already existed: the request that wrote it may have died before
    # announcing it, and this is its client's retry.
    users = [o[0]["user_id"] for o in outcomes if not isinstance(o, BaseException)]
    if users:
        pendingcache.announce_decision(*users)
    return outcomes


def _write(batch: list[dict]) -> list:
    """Append the batch in one call and answer each request (its 4xx as an outcome).

    Retried once on a dead pooled connection (the pool skips per-checkout checks; safe even
    after the COMMIT was sent: the retry finds the rows and answers 200).
    """
    for attempt in (1, 2):
        try:
            with fastpath.decisions_connection() as conn:
                rows = _append(conn, batch)
                for key_id in {row["key_id"] for row in rows if row["stale"]}:
                    # a write per minute per key, not per request
                    conn.execute(
                        "UPDATE api_keys SET last_used_at = now() WHERE id = %(id)s",
                        {"id": key_id},
                    )
                return [
                    _outcome(conn, row, params) for row, params in zip(rows, batch, strict=True)
                ]
        except psycopg.OperationalError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def batch_params(batch: list[dict]) -> dict:
    """`DECIDE_SQL`'s parameter: the requests' `decide_params` as a JSON array of objects (the
    time in ISO 8601; text PostgreSQL cannot store was refused before, by `parse_request`)."""
    return {
        "batch": json.dumps(
            [
                {**{name: params[name] for name in BATCH_COLUMNS}, "now": params["now"].isoformat()}
                for params in batch
            ]
        )
    }


# The chain heads a batch may need (its users' chains, whether or not each decision passes its
# checks), locked in chain order before `DECIDE_SQL` runs in the same transaction. Waiting for a
# head inside `DECIDE_SQL` made PostgreSQL recheck the locked row (EvalPlanQual), which sets up
# the whole large plan again: with four processes' batches contending for the same heads that
# tripled its CPU per decision (BENCHMARKS_pending.md). Here the waiting is done by a small
# statement, and `DECIDE_SQL`, with a snapshot taken after the locks, finds its heads held.
LOCK_HEADS_SQL = """
    SELECT chain
      FROM evidence_chain_head
     WHERE chain IN (SELECT mod(id, {chains})
                       FROM users
                      WHERE external_id IN (SELECT ext FROM json_to_recordset($1) AS b (ext text)))
  ORDER BY chain
       FOR UPDATE
"""

# A batch is one call of a function of the session, `pg_temp.notifier_decide` (`configure`
# defines it on each decisions connection from `LOCK_HEADS_SQL` and `DECIDE_SQL`, so the SQL has
# one source): it locks the heads, then runs `DECIDE_SQL` and returns its rows. In a volatile
# PL/pgSQL function each statement takes a new snapshot, so the decision statement sees every
# commit made before the locks were granted, as the two statements of a transaction did. On
# the autocommit connection the call is its own transaction: one round trip where BEGIN, the
# lock, the statement and COMMIT took four; measured 36-45% less client CPU and 15-26% less
# PostgreSQL CPU per decision (BENCHMARKS_pending.md, seventh session).
DECIDE_FUNCTION = """
CREATE OR REPLACE FUNCTION pg_temp.notifier_decide(json) RETURNS TABLE ({columns})
LANGUAGE plpgsql AS $notifier_decide$
#variable_conflict use_column
BEGIN
    PERFORM * FROM ({lock}) AS locked;
    RETURN QUERY {decide};
END
$notifier_decide$
"""
DECIDE_CALL = "SELECT * FROM pg_temp.notifier_decide(%(batch)s::json)"


def configure(conn: Connection) -> None:
    """Make `conn` a decisions connection: the generic plan always (`fastpath`), and
    `pg_temp.notifier_decide`, whose result columns are those `DECIDE_SQL` describes (so they
    follow the acceptances table's columns)."""
    conn.execute("SET plan_cache_mode = force_generic_plan")
    with conn.transaction(force_rollback=True):  # no rows in, nothing written
        columns = DECIDE.execute(conn, {"batch": "[]"}).description
    types = conn.execute(
        "SELECT format_type(t, NULL) AS type"
        "  FROM unnest(%(oids)s::oid[]) WITH ORDINALITY AS u (t, i) ORDER BY i",
        {"oids": [column.type_code for column in columns]},
    ).fetchall()
    conn.execute(
        DECIDE_FUNCTION.format(
            columns=", ".join(
                f'"{column.name}" {row["type"]}' for column, row in zip(columns, types, strict=True)
            ),
            lock=LOCK_HEADS_SQL.format(chains=evidence.CHAINS),
            decide=DECIDE.sql,
        )
    )


def _append(conn: Connection, batch: list[dict]) -> list[dict]:
    """Run the batch on a decisions connection (`configure`): one call, one transaction."""
    params = batch_params(batch)
    for _ in range(2):
        rows = conn.execute(DECIDE_CALL, params, prepare=True).fetchall()
        if not rows[0]["heads_missing"]:
            return rows
        evidence.ensure_heads(conn)  # the chains' first rows: create their heads, retry
    raise AssertionError("the chain heads exist after ensure_heads")


def _outcome(conn: Connection, row: dict, params: dict):
    try:
        return _answer(conn, row, params)
    except NotifierError as exc:
        return exc


def _answer(conn: Connection, row: dict, params: dict) -> tuple[dict, dict, bool, list[int]]:
    _check_found(row, params["ext"])
    version = {
        "id": row["found_version_id"],
        "uid": row["uid"],
        "seq": row["seq"],
        "slug": row["slug"],
        "title": row["title"],
    }
    if row["id"] is not None:
        return row, version, True, row["event_ids"]
    if row["existing_id"] is not None:
        found = conn.execute(EXISTING_SQL, {"id": row["existing_id"]}).fetchone()
        return found, version, False, []
    _check_acceptable(row, params["now"])
    if not row["delivery_ok"]:  # evidence must not claim to answer someone else's notice
        raise ValidationError(
            f"delivery_id {params['delivery']} is not a notice delivery of this version to this "
            "user; leave it out and the latest one is found.",
            fields={"delivery_id": "a delivery of this version's notice to this user"},
        )
    # Every check passed, yet nothing was inserted: the same decision came earlier in this
    # batch.
    found = acceptances.existing(
        conn, row["found_user_id"], row["found_version_id"], params["decision"]
    )
    return found, version, False, []
