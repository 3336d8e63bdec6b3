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


# Known only once the chain's head is locked, so PostgreSQL writes them into the canonical text.
FROM_HEAD = ("id", "prev_hash", "recorded_at")


def canonical_parts(row: dict) -> list[str]:
    """`canonical(row)` as text, cut around the values of `FROM_HEAD` (in key order).

    `parts[0] + id + parts[1] + prev_hash + parts[2] + recorded_at + parts[3]`, with the id as
    digits and prev_hash and recorded_at (as `_utc` writes it) unquoted, is `canonical(row)`:
    the same json.dumps per key, so the format of existing rows cannot drift (tested).
    """
    data = _canonical_data(row)
    parts, text = [], "{"
    for n, (group, head) in enumerate(_GROUPS):
        # One dumps per run of keys between two head values, its braces cut off.
        items = json.dumps(
            {name: data[name] for name in group},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )[1:-1]
        if items:
            text += ("," if n else "") + items
        if head is None:
            break
        quote = "" if head == "id" else '"'
        parts.append(f'{text}{"," if items or n else ""}"{head}":{quote}')
        text = quote
    parts.append(text + "}")
    return parts


def _groups() -> list[tuple[list[str], str | None]]:
    """CHAINED_FIELDS in key order, as (keys before a head value, that head value) runs."""
    groups, run = [], []
    for name in sorted(CHAINED_FIELDS):
        if name in FROM_HEAD:
            groups.append((run, name))
            run = []
        else:
            run.append(name)
    return [*groups, (run, None)]


_GROUPS = _groups()


def context_digest(salt: str, ip: str | None, user_agent: str, email: str | None) -> str:
    return hashlib.sha256(
        json.dumps([salt, ip, user_agent, email], separators=(",", ":")).encode()
    ).hexdigest()


# One statement appends a decision: lock the chain's head, take the id and the time while
# holding it (so ids grow in chain order, which `verify` relies on), hash the row (the
# canonical text from `canonical_parts` with the id, the previous hash and the time filled in),
# insert it and its context, and move the head. A conflicting (user, version, decision)
# inserts nothing, so neither the context nor the head changes. `append_sql` adds the
# caller's CTEs and the final SELECT, whose `locked` is 0 when the chain has no head row yet.
APPEND_SQL = """
    WITH h AS (
        SELECT last_hash FROM evidence_chain_head WHERE chain = %(chain)s FOR UPDATE
    ), n AS (
        SELECT h.last_hash, nextval('acceptances_id_seq') AS id, clock_timestamp() AS now
          FROM h
    ), a AS (
        INSERT INTO acceptances
               (id, chain, user_id, subject_key, version_id, content_sha256, decision, method,
                recorded_at, locale, prompt_text, delivery_id, api_key_id, context_sha256,
                prev_hash, row_hash)
        SELECT n.id, %(chain)s, %(user_id)s, %(subject_key)s, %(version_id)s,
               %(content_sha256)s, %(decision)s, %(method)s, n.now, %(locale)s,
               %(prompt_text)s, %(delivery_id)s, %(api_key_id)s, %(context_sha256)s,
               n.last_hash,
               encode(sha256(convert_to(
                   %(c0)s::text || n.id || %(c1)s::text || n.last_hash || %(c2)s::text
                   || to_char(n.now AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')
                   || %(c3)s::text,
                   'UTF8')), 'hex')
          FROM n
        ON CONFLICT (user_id, version_id, decision) DO NOTHING
        RETURNING *
    ), c AS (
        INSERT INTO acceptance_context (acceptance_id, salt, ip, user_agent, email)
        SELECT a.id, %(salt)s, %(ip)s, %(user_agent)s, %(email)s
          FROM a
    ), m AS (
        UPDATE evidence_chain_head
           SET last_id = a.id, last_hash = a.row_hash
          FROM a
         WHERE evidence_chain_head.chain = a.chain
    )
"""


def append_sql(ctes: str = "", columns: str = "") -> str:
    """`APPEND_SQL` with the caller's CTEs (which may read `a`, the inserted row) and a final
    SELECT of `locked`, the row, and the caller's extra columns."""
    return (
        APPEND_SQL
        + ctes
        + f"""
    SELECT (SELECT count(*) FROM n) AS locked, a.*{columns}
      FROM (VALUES (1)) AS one (x)
 LEFT JOIN a ON true
"""
    )


def append_params(fields: dict, context: dict) -> dict:
    """Parameters of `APPEND_SQL` for `fields` and `context`.

    `fields`: user_id, subject_key, version_id, content_sha256, decision, method, locale,
    prompt_text, delivery_id, api_key_id. `context`: ip, user_agent, email.
    """
    salt = secrets.token_hex(16)
    row = {
        **fields,
        "chain": fields["user_id"] % CHAINS,
        "context_sha256": context_digest(
            salt, context.get("ip"), context.get("user_agent") or "", context.get("email")
        ),
    }
    c0, c1, c2, c3 = canonical_parts(row)
    return row | {
        "c0": c0,
        "c1": c1,
        "c2": c2,
        "c3": c3,
        "salt": salt,
        "ip": context.get("ip"),
        "user_agent": context.get("user_agent") or "",
        "email": context.get("email"),
    }


def ensure_head(conn: Connection, chain: int) -> None:
    conn.execute(
        """
        INSERT INTO evidence_chain_head (chain, last_id, last_hash)
        VALUES (%(chain)s, 0, %(genesis)s)
        ON CONFLICT (chain) DO NOTHING
    """,
        {"chain": chain, "genesis": GENESIS},
    )


def append(conn: Connection, sql: str, params: dict) -> dict | None:
    """Run an append statement from `append_sql` with `append_params` (plus the parameters of
    the caller's CTEs), in the caller's transaction if any.

    Returns the inserted row (with the caller's extra columns), or None when the decision
    already exists.
    """
    for _ in range(2):
        row = conn.execute(sql, params).fetchone()
        if row.pop("locked"):
            return None if row["id"] is None else row
        ensure_head(conn, params["chain"])  # the chain's first row: create its head, retry
    raise AssertionError("the chain head exists after ensure_head")


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
