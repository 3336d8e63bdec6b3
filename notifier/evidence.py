"""Tamper-evident acceptance evidence: hash-chained appends, verification, exports.

Each row's `row_hash` is SHA-256 over a canonical JSON of its pseudonymous fields and
`prev_hash`, the previous row's hash in the same chain. Personal context (IP, user agent,
email) is kept in `acceptance_context` and covered only through `context_sha256`, a salted
digest: erasing the context leaves the chain intact and the digest unlinkable.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from psycopg import Connection

from . import db

GENESIS = "0" * 64
# Appends for users in different chains run in parallel. Stored in each row, so changing this
# later never breaks verification of old rows.
CHAINS = 16
CHAINED_FIELDS = (
    "id",
    "chain",
    "prev_hash",
    "subject_key",
    "user_id",
    "version_id",
    "content_sha256",
    "decision",
    "method",
    "recorded_at",
    "locale",
    "prompt_sha256",
    "delivery_id",
    "api_key_id",
    "context_sha256",
)


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _canonical_data(row: dict) -> dict:
    data = {name: row.get(name) for name in CHAINED_FIELDS if name != "prompt_sha256"}
    data["prompt_sha256"] = hashlib.sha256(row["prompt_text"].encode()).hexdigest()
    if row.get("recorded_at") is not None:
        data["recorded_at"] = _utc(row["recorded_at"])
    return data


def canonical(row: dict) -> bytes:
    """The exact bytes hashed for a row; documented in docs/acceptance.md."""
    return json.dumps(
        _canonical_data(row), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def row_hash(row: dict) -> str:
    return hashlib.sha256(canonical(row)).hexdigest()


def context_digest(salt: str, ip: str | None, user_agent: str, email: str | None) -> str:
    return hashlib.sha256(
        json.dumps([salt, ip, user_agent, email], separators=(",", ":")).encode()
    ).hexdigest()


def context_head(salt: str, ip: str | None, user_agent: str) -> str:
    """What `context_digest` hashes, up to the email: PostgreSQL appends `,<email>]` when the
    email is read in the append statement itself (`json_ascii_sql`)."""
    return json.dumps([salt, ip, user_agent], separators=(",", ":"))[:-1]


def json_ascii_sql(value: str) -> str:
    r"""SQL for `json.dumps(value)` (ensure_ascii) of a text expression, as `context_digest`
    writes the email: to_json for printable ASCII (it escapes `"`, `\` and controls exactly as
    Python does), else character by character with `\uXXXX` and surrogate pairs. Tested against
    json.dumps for any text."""
    return rf"""
        CASE WHEN {value} IS NULL THEN 'null'
             WHEN octet_length({value}) = length({value}) AND strpos({value}, chr(127)) = 0
             THEN to_json({value}::text)::text
             ELSE (SELECT '"' || string_agg(CASE
                       WHEN ch = '"' THEN '\"'
                       WHEN ch = '\' THEN '\\'
                       WHEN ascii(ch) BETWEEN 32 AND 126 THEN ch
                       WHEN ch = chr(8) THEN '\b'
                       WHEN ch = chr(9) THEN '\t'
                       WHEN ch = chr(10) THEN '\n'
                       WHEN ch = chr(12) THEN '\f'
                       WHEN ch = chr(13) THEN '\r'
                       WHEN ascii(ch) < 65536 THEN '\u' || lpad(to_hex(ascii(ch)), 4, '0')
                       ELSE '\u' || to_hex(55232 + (ascii(ch) >> 10))
                            || '\u' || to_hex(56320 + (ascii(ch) & 1023))
                   END, '' ORDER BY i) || '"'
                     FROM generate_series(1, length({value})) AS i,
                          substr({value}, i, 1) AS ch)
        END"""


# `canonical(row)` written by PostgreSQL from the values it inserts: `r` is the row's input
# (see `append_sql`), `n` the id, the previous hash and the time taken once the chain's head is
# locked. Keys in sorted order; integers as digits; text through to_json, which escapes exactly
# as json.dumps(ensure_ascii=False) does (`"`, `\`, \b \f \n \r \t, other controls as \u00XX,
# nothing else); the time as `_utc` writes it. A property test checks it against `canonical`
# for any text, so the format of existing rows cannot drift.
CANONICAL_SQL = """
    '{"api_key_id":' || coalesce(r.api_key_id::text, 'null')
    || ',"chain":' || r.chain
    || ',"content_sha256":' || to_json(r.content_sha256::text)::text
    || ',"context_sha256":' || to_json(r.context_sha256::text)::text
    || ',"decision":' || to_json(r.decision::text)::text
    || ',"delivery_id":' || coalesce(r.delivery_id::text, 'null')
    || ',"id":' || n.id
    || ',"locale":' || to_json(r.locale::text)::text
    || ',"method":' || to_json(r.method::text)::text
    || ',"prev_hash":' || to_json(n.last_hash::text)::text
    || ',"prompt_sha256":"' || encode(sha256(convert_to(r.prompt_text, 'UTF8')), 'hex')
    || '","recorded_at":"'
    || to_char(n.now AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')
    || '","subject_key":' || to_json(r.subject_key::text)::text
    || ',"user_id":' || r.user_id
    || ',"version_id":' || r.version_id
    || '}'
"""

# The stored columns of a decision, in the order both appends' SELECTs give them.
INSERT_ACCEPTANCE = """INSERT INTO acceptances
               (id, chain, user_id, subject_key, version_id, content_sha256, decision, method,
                recorded_at, locale, prompt_text, delivery_id, api_key_id, context_sha256,
                prev_hash, row_hash)"""

# One statement appends a decision: lock the chain's head, take the id and the time while
# holding it (so ids grow in chain order, which `verify` relies on), hash the row
# (`CANONICAL_SQL`), insert it and its context, and move the head. Its input is the one-row
# CTE `r` that the caller's source defines (from parameters, or resolved in the same
# statement); an empty `r` locks and writes nothing. A conflicting (user, version, decision)
# inserts nothing, so neither the context nor the head changes.
APPEND_CTES = f"""
    , h AS (
        SELECT last_hash FROM evidence_chain_head
         WHERE chain = (SELECT chain FROM r) FOR UPDATE
    ), n AS (
        SELECT h.last_hash, nextval('acceptances_id_seq') AS id, clock_timestamp() AS now
          FROM h
    ), a AS (
        {INSERT_ACCEPTANCE}
        SELECT n.id, r.chain, r.user_id, r.subject_key, r.version_id, r.content_sha256,
               r.decision, r.method, n.now, r.locale, r.prompt_text, r.delivery_id,
               r.api_key_id, r.context_sha256, n.last_hash,
               encode(sha256(convert_to({CANONICAL_SQL}, 'UTF8')), 'hex')
          FROM n, r
        ON CONFLICT (user_id, version_id, decision) DO NOTHING
        RETURNING *
    ), c AS (
        INSERT INTO acceptance_context (acceptance_id, salt, ip, user_agent, email)
        SELECT a.id, r.salt, r.ip, r.user_agent, r.email
          FROM a, r
    ), m AS (
        UPDATE evidence_chain_head
           SET last_id = a.id, last_hash = a.row_hash
          FROM a
         WHERE evidence_chain_head.chain = a.chain
    )
"""


def append_sql(source: str, ctes: str = "", columns: str = "", joins: str = "") -> str:
    """The append statement: `WITH <source>` (which must define `r`), `APPEND_CTES`, the
    caller's CTEs (which may read `a`, the inserted row), then one row of: `wanted` (r has a
    row), `locked` (the chain's head was found and locked), the inserted row `a.*` (all NULL
    if none), and the caller's `columns` from its `joins`.

    `r`'s columns: chain, user_id, subject_key, version_id, content_sha256, decision, method,
    locale, prompt_text, delivery_id, api_key_id, context_sha256 (the row), salt, ip,
    user_agent, email (its context).
    """
    return (
        f"WITH {source}{APPEND_CTES}{ctes}"
        f"""
    SELECT (SELECT count(*) FROM r) AS wanted, (SELECT count(*) FROM n) AS locked,
           a.*{columns}
      FROM (VALUES (1)) AS one (x)
 LEFT JOIN a ON true{joins}
"""
    )


# `APPEND_CTES` for many rows at once (`r` as there, plus `ord`, their order; several may share
# a chain): lock every head they need, in chain order (two batches never wait on each other in a
# cycle), take the ids in chain order while holding them, and hash each chain's rows one after
# another (`x`, recursive: each row's prev_hash is the row before it), then insert the rows and
# their contexts and move each head to its chain's last row. If a head is missing
# (`held.all_heads` is false; `heads_missing` in `DECIDE_SQL`), `n` is empty and nothing is
# written. A row that conflicts on (user, version, decision) is an error, not skipped: the rows
# after it in its chain were hashed after it. It cannot happen while the caller holds the heads
# from before the statement's snapshot (`decisions.LOCK_HEADS_SQL`, run first in the same
# call): every append of that user's decisions needs the same head.
APPEND_BATCH_CTES = f"""
    , h AS (
        SELECT chain, last_hash
          FROM evidence_chain_head
         WHERE chain IN (SELECT chain FROM r)
      ORDER BY chain
           FOR UPDATE
    ), held AS (
        SELECT (SELECT count(*) FROM h) = (SELECT count(DISTINCT chain) FROM r) AS all_heads
    ), n AS (
        SELECT nextval('acceptances_id_seq') AS id, t.*
          FROM (SELECT r.*, h.last_hash AS head_hash,
                       row_number() OVER (PARTITION BY r.chain ORDER BY r.ord) AS step
                  FROM r
                  JOIN h ON h.chain = r.chain
                 WHERE (SELECT all_heads FROM held)
              ORDER BY r.chain, r.ord) t
    ), x AS (
        SELECT r.id, r.chain, r.step, n.now AS recorded_at, n.last_hash AS prev_hash,
               encode(sha256(convert_to({CANONICAL_SQL}, 'UTF8')), 'hex') AS row_hash
          FROM n AS r
    CROSS JOIN LATERAL (SELECT r.id, r.head_hash AS last_hash, clock_timestamp() AS now) n
         WHERE r.step = 1
     UNION ALL
        SELECT r.id, r.chain, r.step, n.now, n.last_hash,
               encode(sha256(convert_to({CANONICAL_SQL}, 'UTF8')), 'hex')
          FROM x
          JOIN n AS r ON r.chain = x.chain AND r.step = x.step + 1
    CROSS JOIN LATERAL (SELECT r.id, x.row_hash AS last_hash, clock_timestamp() AS now) n
    ), a AS (
        {INSERT_ACCEPTANCE}
        SELECT n.id, n.chain, n.user_id, n.subject_key, n.version_id, n.content_sha256,
               n.decision, n.method, x.recorded_at, n.locale, n.prompt_text, n.delivery_id,
               n.api_key_id, n.context_sha256, x.prev_hash, x.row_hash
          FROM x
          JOIN n ON n.id = x.id
      ORDER BY n.id
     RETURNING *
    ), c AS (
        INSERT INTO acceptance_context (acceptance_id, salt, ip, user_agent, email)
        SELECT a.id, n.salt, n.ip, n.user_agent, n.email
          FROM a
          JOIN n ON n.id = a.id
    ), m AS (
        UPDATE evidence_chain_head
           SET last_id = l.id, last_hash = l.row_hash
          FROM (SELECT DISTINCT ON (chain) chain, id, row_hash FROM a ORDER BY chain, id DESC) l
         WHERE evidence_chain_head.chain = l.chain
    )
"""


def append_batch_sql(source: str, ctes: str = "") -> str:
    """The CTEs of a batch append (`WITH RECURSIVE` and the final SELECT are the caller's):
    `source` (which defines `r`, with `ord`), `APPEND_BATCH_CTES`, then the caller's `ctes`,
    which may read `a` (the inserted rows), `n` (each with its `r` columns and `ord`) and
    `held` (`all_heads`: every head the batch needs was found and locked)."""
    return f"{source}{APPEND_BATCH_CTES}{ctes}"


def append_params(fields: dict, context: dict) -> dict:
    """Parameters for a source that gives `r` from Python values (see `append_sql`).

    `fields`: user_id, subject_key, version_id, content_sha256, decision, method, locale,
    prompt_text, delivery_id, api_key_id. `context`: ip, user_agent, email.
    """
    salt = secrets.token_hex(16)
    ip, user_agent, email = context.get("ip"), context.get("user_agent") or "", context.get("email")
    return {
        **fields,
        "chain": fields["user_id"] % CHAINS,
        "context_sha256": context_digest(salt, ip, user_agent, email),
        "salt": salt,
        "ip": ip,
        "user_agent": user_agent,
        "email": email,
    }


def ensure_heads(conn: Connection) -> None:
    """Create the head row of every chain that has none (the first append ever)."""
    conn.execute(
        """
        INSERT INTO evidence_chain_head (chain, last_id, last_hash)
        SELECT chain, 0, %(genesis)s FROM generate_series(0, %(chains)s - 1) AS chain
        ON CONFLICT (chain) DO NOTHING
    """,
        {"genesis": GENESIS, "chains": CHAINS},
    )


def append(conn: Connection, sql: str | db.RawStatement, params: dict) -> dict:
    """Run an append statement from `append_sql`, in the caller's transaction if any.

    Returns its one row: `id` is None when nothing was inserted (`r` was empty, or the decision
    already exists). `wanted` and `locked` are removed.
    """
    for _ in range(2):
        row = db.execute(conn, sql, params).fetchone()
        wanted, locked = row.pop("wanted"), row.pop("locked")
        if locked or not wanted:
            return row
        ensure_heads(conn)  # the chain's first row: create its head, retry
    raise AssertionError("the chain head exists after ensure_heads")


@dataclass
class Verification:
    rows: int
    chains: int
    first_bad_id: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(conn: Connection) -> Verification:
    """Recompute every chain, in id order, and name the first row that does not match."""
    last: dict[int, tuple[int, str]] = {}
    count = 0
    with conn.transaction(), conn.cursor(name="evidence_verify") as cur:
        cur.itersize = 2000
        cur.execute("""
            SELECT a.*, c.acceptance_id AS context_id, c.salt, host(c.ip) AS ip, c.user_agent,
                   c.email, u.erased_at
              FROM acceptances a
              JOIN users u ON u.id = a.user_id
         LEFT JOIN acceptance_context c ON c.acceptance_id = a.id
          ORDER BY a.id
        """)
        for row in cur:
            count += 1
            prev_id, prev = last.get(row["chain"], (0, GENESIS))
            if row["prev_hash"] != prev:
                return Verification(
                    count,
                    len(last),
                    row["id"],
                    f"row {row['id']}: prev_hash does not match the row_hash of "
                    f"{'the chain start' if prev_id == 0 else f'row {prev_id}'} "
                    f"in chain {row['chain']} (a row was removed, inserted or reordered)",
                )
            if row_hash(row) != row["row_hash"]:
                return Verification(
                    count,
                    len(last),
                    row["id"],
                    f"row {row['id']}: row_hash does not match its content (the row was altered)",
                )
            if row["context_id"] is None and row["erased_at"] is None:
                return Verification(
                    count, len(last), row["id"], f"row {row['id']}: its context is missing"
                )
            if row["context_id"] is not None and row["context_sha256"] != context_digest(
                row["salt"], row["ip"], row["user_agent"], row["email"]
            ):
                return Verification(
                    count,
                    len(last),
                    row["id"],
                    f"row {row['id']}: IP, user agent or email differ from what was recorded",
                )
            last[row["chain"]] = (row["id"], row["row_hash"])
        heads = conn.execute("SELECT * FROM evidence_chain_head ORDER BY chain").fetchall()
    for head in heads:
        if head["last_id"] == 0 and head["chain"] not in last:
            continue
        tail_id, tail_hash = last.get(head["chain"], (0, GENESIS))
        if (head["last_id"], head["last_hash"]) != (tail_id, tail_hash):
            return Verification(
                count,
                len(last),
                head["last_id"] or None,
                f"chain {head['chain']}: the head points at row {head['last_id']} but the last "
                f"row is {tail_id or 'none'} (rows after {tail_id or 'the start'} were removed)",
            )
    missing = set(last) - {h["chain"] for h in heads}
    if missing:
        chain = min(missing)
        return Verification(
            count, len(last), last[chain][0], f"chain {chain}: its head row is missing"
        )
    return Verification(count, len(last))


EXPORT_COLUMNS = (
    "id",
    "recorded_at",
    "decision",
    "method",
    "external_id",
    "subject_key",
    "policy",
    "version",
    "content_sha256",
    "locale",
    "ip",
    "user_agent",
    "email",
    "prompt_text",
    "delivery_id",
    "chain",
    "prev_hash",
    "row_hash",
)


def rows_for(
    conn: Connection, *, version_id: int | None = None, user_id: int | None = None
) -> Iterator[dict]:
    """Evidence rows with their context, streamed (a server-side cursor) in id order."""
    with conn.transaction(), conn.cursor(name="evidence_export") as cur:
        cur.itersize = 2000
        cur.execute(
            """
            SELECT a.id, a.recorded_at, a.decision, a.method,
                   CASE WHEN u.erased_at IS NULL THEN u.external_id END AS external_id,
                   a.subject_key, p.slug AS policy, v.seq AS version, a.content_sha256, a.locale,
                   host(c.ip) AS ip, c.user_agent, c.email, a.prompt_text, a.delivery_id,
                   a.chain, a.prev_hash, a.row_hash
              FROM acceptances a
              JOIN users u ON u.id = a.user_id
              JOIN policy_versions v ON v.id = a.version_id
              JOIN policies p ON p.id = v.policy_id
         LEFT JOIN acceptance_context c ON c.acceptance_id = a.id
             WHERE (%(version_id)s::bigint IS NULL OR a.version_id = %(version_id)s)
               AND (%(user_id)s::bigint IS NULL OR a.user_id = %(user_id)s)
          ORDER BY a.id
        """,
            {"version_id": version_id, "user_id": user_id},
        )
        yield from cur


def row_json(row: dict) -> dict:
    data = {name: row.get(name) for name in EXPORT_COLUMNS}
    data["recorded_at"] = _utc(row["recorded_at"])
    return data
