"""The delivery ledger: one row per (notice, user), moved pending → sending → sent → events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from psycopg import Connection

from .notices import DELIVERABLE


@dataclass
class Claim:
    """A batch taken by one send job: its attempt rows (one per locale group) and recipients."""

    notice_id: int
    batch_no: int
    groups: dict[str, list[dict]] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)


def fan_out_page(
    conn: Connection,
    notice_id: int,
    batch_size: int,
    *,
    catch_up: bool = False,
    audience_sql: str = "",
    params: dict | None = None,
) -> tuple[int, int] | None:
    """Write the next page of the audience as one batch; (batch_no, rows) or None when done.

    Runs inside the caller's transaction with the notice row locked, so two fan-outs of one
    notice take turns and continue each other's cursor. Keyset pagination by user id keeps memory
    flat and every page an index range scan; the rows never leave the server. `catch_up` pages
    instead find deliverable users without a delivery (created or fixed after the first pass).
    `audience_sql` is a constant SQL condition on `u` (reminders: not yet accepted).
    """
    notice = conn.execute(
        "SELECT fanout_cursor, batch_count FROM notices WHERE id = %(id)s FOR UPDATE",
        {"id": notice_id},
    ).fetchone()
    batch_no = notice["batch_count"] + 1
    if catch_up:
        page = """
            SELECT u.id
              FROM users u
             WHERE {deliverable} {audience}
               AND NOT EXISTS (
                   SELECT 1 FROM deliveries d WHERE d.notice_id = %(n)s AND d.user_id = u.id
               )
          ORDER BY u.id
             LIMIT %(size)s
        """
    else:
        page = """
            SELECT u.id
              FROM users u
             WHERE u.id > %(after)s AND {deliverable} {audience}
          ORDER BY u.id
             LIMIT %(size)s
        """
    row = conn.execute(
        f"""
        WITH page AS ({page.format(deliverable=DELIVERABLE, audience=audience_sql)}),
        written AS (
            INSERT INTO deliveries (notice_id, user_id, batch_no)
            SELECT %(n)s, id, %(b)s
              FROM page
            ON CONFLICT (notice_id, user_id) DO NOTHING
            RETURNING 1
        )
        SELECT (SELECT max(id) FROM page) AS last_id, (SELECT count(*) FROM written) AS written
    """,
        {
            **(params or {}),
            "n": notice_id,
            "b": batch_no,
            "after": notice["fanout_cursor"],
            "size": batch_size,
        },
    ).fetchone()
    if row["last_id"] is None:
        return None
    conn.execute(
        """
        UPDATE notices
           SET fanout_cursor = greatest(fanout_cursor, %(last)s),
               batch_count = batch_count + CASE WHEN %(written)s > 0 THEN 1 ELSE 0 END
         WHERE id = %(n)s
    """,
        {"n": notice_id, "last": row["last_id"], "written": row["written"]},
    )
    return batch_no, row["written"]


def set_batch_due(conn: Connection, notice_id: int, batch_no: int, due_at: datetime) -> None:
    conn.execute(
        """
        UPDATE deliveries
           SET due_at = %(due)s
         WHERE notice_id = %(n)s AND batch_no = %(b)s AND state = 'pending'
    """,
        {"n": notice_id, "b": batch_no, "due": due_at},
    )


def mark_fanout_done(conn: Connection, notice_id: int) -> None:
    conn.execute("UPDATE notices SET fanout_done = true WHERE id = %(id)s", {"id": notice_id})


def claim_batch(conn: Connection, notice_id: int, batch_no: int, lease_seconds: int) -> Claim:
    """pending (or sending with an expired lease) → sending, with a lease; in a transaction.

    Rows another job holds are skipped (SKIP LOCKED), so two runs of one job never send the same
    recipients. Recipients whose address went away since the fan-out are cancelled here.
    """
    conn.execute(
        f"""
        UPDATE deliveries d
           SET state = 'cancelled', error = 'no deliverable address at send time',
               updated_at = now()
          FROM users u
         WHERE d.notice_id = %(n)s AND d.batch_no = %(b)s AND d.state = 'pending'
           AND u.id = d.user_id AND NOT ({DELIVERABLE})
    """,
        {"n": notice_id, "b": batch_no},
    )
    rows = conn.execute(
        """
        WITH claimable AS (
            SELECT d.id
              FROM deliveries d
              JOIN notices n ON n.id = d.notice_id
             WHERE d.notice_id = %(n)s AND d.batch_no = %(b)s AND n.state = 'sending'
               AND (d.state = 'pending' OR (d.state = 'sending' AND d.lease_expires_at < now()))
               FOR UPDATE OF d SKIP LOCKED
        )
        UPDATE deliveries d
           SET state = 'sending', attempts = d.attempts + 1, email = u.email,
               lease_expires_at = now() + make_interval(secs => %(lease)s), updated_at = now()
          FROM users u
         WHERE d.id IN (SELECT id FROM claimable) AND u.id = d.user_id
        RETURNING d.id, d.user_id, d.transient_errors, u.email, u.name, u.locale
    """,
        {"n": notice_id, "b": batch_no, "lease": lease_seconds},
    ).fetchall()
    claim = Claim(notice_id, batch_no)
    for row in sorted(rows, key=lambda r: r["id"]):
        claim.groups.setdefault(row["locale"] or "en", []).append(row)
    for locale, group in claim.groups.items():
        claim.attempts[locale] = conn.execute(
            """
            INSERT INTO send_attempts (notice_id, batch_no, recipients)
            VALUES (%(n)s, %(b)s, %(count)s)
            RETURNING id
        """,
            {"n": notice_id, "b": batch_no, "count": len(group)},
        ).fetchone()["id"]
    return claim


def mark_requested(conn: Connection, attempt_id: int) -> None:
    """Just before the HTTP call: from now on a crash leaves the outcome unknown."""
    conn.execute(
        "UPDATE send_attempts SET requested_at = now() WHERE id = %(id)s", {"id": attempt_id}
    )


def _finish_attempt(conn: Connection, attempt_id: int, outcome: str, **kw) -> None:
    conn.execute(
        """
        UPDATE send_attempts
           SET finished_at = now(), outcome = %(outcome)s, status_code = %(status)s,
               message_id = %(message_id)s, detail = %(detail)s
         WHERE id = %(id)s
    """,
        {
            "id": attempt_id,
            "outcome": outcome,
            "status": kw.get("status"),
            "message_id": kw.get("message_id"),
            "detail": kw.get("detail"),
        },
    )


def mark_sent(conn: Connection, attempt_id: int, ids: list[int], message_id: str | None) -> None:
    """sending → sent with SendGrid's X-Message-Id, in one statement for the whole request."""
    conn.execute(
        """
        UPDATE deliveries
           SET state = 'sent', sent_at = now(), sg_message_id = %(mid)s, lease_expires_at = NULL,
               error = NULL, updated_at = now()
         WHERE id = ANY(%(ids)s) AND state = 'sending'
    """,
        {"ids": ids, "mid": message_id},
    )
    _finish_attempt(conn, attempt_id, "sent", status=202, message_id=message_id)


def release(
    conn: Connection,
    attempt_id: int,
    ids: list[int],
    *,
    due_at: datetime,
    outcome: str,
    detail: str,
    status: int | None,
    transient: bool,
    unknown_outcome: bool,
) -> None:
    """sending → pending, due again at `due_at` (a 429's reset or a backoff)."""
    conn.execute(
        """
        UPDATE deliveries
           SET state = 'pending', due_at = %(due)s, lease_expires_at = NULL, error = %(detail)s,
               transient_errors = transient_errors + %(transient)s,
               possible_duplicate = possible_duplicate OR %(unknown)s, updated_at = now()
         WHERE id = ANY(%(ids)s) AND state = 'sending'
    """,
        {
            "ids": ids,
            "due": due_at,
            "detail": detail,
            "transient": int(transient),
            "unknown": unknown_outcome,
        },
    )
    _finish_attempt(conn, attempt_id, outcome, status=status, detail=detail)


def fail(
    conn: Connection, attempt_id: int, ids: list[int], detail: str, status: int | None
) -> None:
    """sending → failed, permanently, with SendGrid's error text for the admin."""
    conn.execute(
        """
        UPDATE deliveries
           SET state = 'failed', error = %(detail)s, lease_expires_at = NULL, updated_at = now()
         WHERE id = ANY(%(ids)s) AND state = 'sending'
    """,
        {"ids": ids, "detail": detail},
    )
    _finish_attempt(conn, attempt_id, "failed", status=status, detail=detail)


def recover_expired(conn: Connection) -> list[tuple[int, int]]:
    """Batches whose lease ran out (their worker died) go back to pending; returns them.

    An attempt that had started its HTTP request leaves its outcome unknown: SendGrid may have
    accepted it, so the recipients re-sent are flagged as possible duplicates for the report.
    """
    batches = conn.execute(
        """
        SELECT DISTINCT notice_id, batch_no
          FROM deliveries
         WHERE state = 'sending' AND lease_expires_at < now()
    """
    ).fetchall()
    recovered = []
    for b in batches:
        interrupted = conn.execute(
            """
            UPDATE send_attempts
               SET finished_at = now(), outcome = 'interrupted',
                   detail = 'lease expired: the worker stopped during this attempt'
             WHERE notice_id = %(notice_id)s AND batch_no = %(batch_no)s AND finished_at IS NULL
         RETURNING requested_at IS NOT NULL AS requested
        """,
            b,
        ).fetchall()
        unknown = any(r["requested"] for r in interrupted)
        moved = conn.execute(
            """
            UPDATE deliveries
               SET state = 'pending', due_at = now(), lease_expires_at = NULL,
                   possible_duplicate = possible_duplicate OR %(unknown)s, updated_at = now()
             WHERE notice_id = %(notice_id)s AND batch_no = %(batch_no)s
               AND state = 'sending' AND lease_expires_at < now()
        """,
            {**b, "unknown": unknown},
        ).rowcount
        if moved:
            recovered.append((b["notice_id"], b["batch_no"]))
    return recovered


def overdue_batches(conn: Connection, grace_seconds: float) -> list[tuple[int, int]]:
    """Pending batches of sending notices that no job picked up in time (a lost enqueue)."""
    rows = conn.execute(
        """
        WITH overdue AS (
            SELECT DISTINCT d.notice_id, d.batch_no
              FROM deliveries d
              JOIN notices n ON n.id = d.notice_id
             WHERE n.state = 'sending' AND d.state = 'pending'
               AND d.due_at < now() - make_interval(secs => %(grace)s)
        )
        UPDATE deliveries d
           SET due_at = now()
          FROM overdue o
         WHERE d.notice_id = o.notice_id AND d.batch_no = o.batch_no AND d.state = 'pending'
        RETURNING d.notice_id, d.batch_no
    """,
        {"grace": grace_seconds},
    ).fetchall()
    return sorted({(r["notice_id"], r["batch_no"]) for r in rows})


def pending_batches(conn: Connection, notice_id: int) -> list[int]:
    rows = conn.execute(
        """
        SELECT DISTINCT batch_no
          FROM deliveries
         WHERE notice_id = %(n)s AND state = 'pending'
      ORDER BY batch_no
    """,
        {"n": notice_id},
    ).fetchall()
    return [r["batch_no"] for r in rows]


def recipients(
    conn: Connection,
    notice_id: int,
    *,
    state: str | None = None,
    q: str | None = None,
    after: int = 0,
    limit: int = 100,
) -> list[dict]:
    """One page of a notice's ledger, keyset by delivery id, filtered by state or address."""
    return conn.execute(
        """
        SELECT d.*, u.external_id, u.name, coalesce(d.email, u.email) AS address
          FROM deliveries d
          JOIN users u ON u.id = d.user_id
         WHERE d.notice_id = %(n)s AND d.id > %(after)s
           AND (%(state)s::text IS NULL OR d.state = %(state)s)
           AND (%(q)s::text IS NULL OR u.email ILIKE '%%' || %(q)s || '%%'
                OR u.external_id = %(q)s)
      ORDER BY d.id
         LIMIT %(limit)s
    """,
        {"n": notice_id, "state": state, "q": q or None, "after": after, "limit": limit},
    ).fetchall()


def delivery_history(conn: Connection, delivery_id: int) -> dict | None:
    """A delivery with its batch's send attempts and its webhook events, oldest first."""
    delivery = conn.execute(
        """
        SELECT d.*, u.external_id, u.name, u.email AS current_email,
               u.email_undeliverable_at, u.email_undeliverable_reason
          FROM deliveries d
          JOIN users u ON u.id = d.user_id
         WHERE d.id = %(id)s
    """,
        {"id": delivery_id},
    ).fetchone()
    if delivery is None:
        return None
    attempts = conn.execute(
        """
        SELECT *
          FROM send_attempts
         WHERE notice_id = %(n)s AND batch_no = %(b)s
      ORDER BY id
    """,
        {"n": delivery["notice_id"], "b": delivery["batch_no"]},
    ).fetchall()
    events = conn.execute(
        """
        SELECT *
          FROM delivery_events
         WHERE delivery_id = %(id)s
      ORDER BY occurred_at NULLS LAST, id
    """,
        {"id": delivery_id},
    ).fetchall()
    return {"delivery": delivery, "attempts": attempts, "events": events}


def user_deliveries(conn: Connection, user_id: int) -> list[dict]:
    """Every delivery to this user, newest first, with its notice, version and policy."""
    return conn.execute(
        """
        SELECT d.*, n.kind, n.id AS notice_id, v.seq, p.slug, p.title
          FROM deliveries d
          JOIN notices n ON n.id = d.notice_id
          JOIN policy_versions v ON v.id = n.version_id
          JOIN policies p ON p.id = v.policy_id
         WHERE d.user_id = %(u)s
      ORDER BY d.id DESC
    """,
        {"u": user_id},
    ).fetchall()
