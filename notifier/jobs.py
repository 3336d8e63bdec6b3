"""RQ jobs of the notice pipeline: fan-out, one SendGrid request per batch, the recovery sweep.

Every job takes ids only, holds no transaction across an HTTP call and is safe to run twice:
the ledger in PostgreSQL, not the job id, decides what is sent.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime, timedelta

from flask import current_app
from rq import Queue
from rq.job import Job

from . import db, ledger, mailer, notices, queues, reminders

log = logging.getLogger(__name__)
FANOUT_PAGES_PER_COMMIT = 10  # 10,000 rows per transaction, then their jobs in one pipeline

# Reserve `count` emails of the hourly budget; returns the epoch second the batch may go.
_RESERVE = """
local now = tonumber(ARGV[1])
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, next_free)
redis.call('SET', KEYS[1], tostring(slot + tonumber(ARGV[2])), 'EX', 86400 * 7)
return tostring(slot)
"""


def _now() -> datetime:
    return datetime.now(UTC)


def reserve_slot(count: int) -> datetime:
    """When a batch of `count` emails may be sent under SEND_RATE_PER_HOUR (now when uncapped).

    One Redis key shared by every worker and notice spreads all sending, retries included.
    """
    rate = current_app.config["SEND_RATE_PER_HOUR"]
    if rate <= 0:
        return _now()
    redis = queues.redis_connection()
    slot = redis.eval(_RESERVE, 1, "notifier:send-slot", time.time(), count * 3600.0 / rate)
    return datetime.fromtimestamp(float(slot), UTC)


def _send_timeout() -> int:
    return int(current_app.config["SENDGRID_TIMEOUT"]) + 60


def _schedule_send(
    notice_id: int, batch_no: int, due_at: datetime, job_id: str, pipeline=None
) -> None:
    q = queues.queue("email")
    if due_at <= _now() + timedelta(milliseconds=50):
        q.enqueue_many(
            [
                Queue.prepare_data(
                    send_notice_batch,
                    (notice_id, batch_no),
                    job_id=job_id,
                    timeout=_send_timeout(),
                    result_ttl=300,
                    failure_ttl=7 * 86400,
                )
            ],
            pipeline=pipeline,
        )
    else:
        # RQ's scheduler keeps whole seconds (it floors): round up so a batch is never early.
        q.enqueue_at(
            datetime.fromtimestamp(math.ceil(due_at.timestamp()), UTC),
            send_notice_batch,
            notice_id,
            batch_no,
            job_id=job_id,
            job_timeout=_send_timeout(),
            result_ttl=300,
            pipeline=pipeline,
        )


# --- fan-out ----------------------------------------------------------------------------------


def enqueue_notice(notice: dict | None, suffix: str = "") -> None:
    """After COMMIT of the publish: queue the fan-out now, or at the scheduled time."""
    if notice is None or not notice["email"] or notice["state"] not in ("queued", "scheduled"):
        return
    q = queues.queue("fanout")
    job_id = f"fanout-{notice['id']}" + (f"-{suffix}" if suffix else "")
    if notice["state"] == "scheduled":
        q.enqueue_at(notice["scheduled_at"], fan_out_notice, notice["id"], job_id=job_id)
    else:
        q.enqueue(fan_out_notice, notice["id"], job_id=job_id, job_timeout=3600)
    ensure_sweep()


def fan_out_notice(notice_id: int, catch_up: bool = False) -> int:
    """Write the notice's deliveries page by page and enqueue one send job per batch.

    Resumable: the cursor and batch count live on the notice row and advance in the same
    transaction as the rows, so a re-run continues where a killed one stopped.
    """
    config = current_app.config
    size = config["SEND_BATCH_SIZE"]
    with db.connection() as conn:
        if notices.start(conn, notice_id) is None:
            return 0  # paused, cancelled, not yet due, or in-app only
    with db.connection() as conn:
        audience = reminders.audience(conn, notice_id)
    written_total = 0
    done = False
    while not done:
        batches: list[tuple[int, int]] = []
        with db.connection() as conn, conn.transaction():
            for _ in range(FANOUT_PAGES_PER_COMMIT):
                page = ledger.fan_out_page(conn, notice_id, size, catch_up=catch_up, **audience)
                if page is None:
                    done = True
                    ledger.mark_fanout_done(conn, notice_id)
                    break
                if page[1]:
                    batches.append(page)
            slots = []
            for batch_no, count in batches:
                due = reserve_slot(count)
                if due > _now():
                    ledger.set_batch_due(conn, notice_id, batch_no, due)
                slots.append((batch_no, due))
        # Only now, after COMMIT, can a worker see the rows these jobs will claim.
        suffix = f"-c{int(time.time() * 1000)}" if catch_up else ""
        with queues.redis_connection().pipeline() as pipe:
            for batch_no, due in slots:
                job_id = f"send-{notice_id}-{batch_no}{suffix}"
                _schedule_send(notice_id, batch_no, due, job_id, pipe)
            pipe.execute()
        written_total += sum(count for _, count in batches)
    with db.connection() as conn:
        notices.finish_if_done(conn, notice_id)
    log.info("notice %s: fan-out wrote %s deliveries", notice_id, written_total)
    return written_total


# --- sending ----------------------------------------------------------------------------------


def send_notice_batch(notice_id: int, batch_no: int) -> dict:
    """Send one batch: claim it, one Mail Send request per language group, record the outcome."""
    config = current_app.config
    with db.connection() as conn, conn.transaction():
        claim = ledger.claim_batch(conn, notice_id, batch_no, config["SEND_LEASE_SECONDS"])
    if not claim.groups:
        return {"sent": 0}  # paused, cancelled, done already, or held by another worker
    with db.connection() as conn:
        notice, version = reminders.email_context(conn, notice_id)
    sent = 0
    for locale, recipients in claim.groups.items():
        attempt_id = claim.attempts[locale]
        ids = [r["id"] for r in recipients]
        message = mailer.build_message(notice, version, mailer.language(locale), recipients)
        with db.connection() as conn:
            ledger.mark_requested(conn, attempt_id)
        try:
            message_id = mailer.send(db.connection, message, notice_id=notice_id)
        except mailer.SendError as exc:
            _handle_failure(exc, notice_id, batch_no, attempt_id, recipients)
            continue
        with db.connection() as conn, conn.transaction():
            ledger.mark_sent(conn, attempt_id, ids, message_id)
        sent += len(ids)
    with db.connection() as conn:
        notices.finish_if_done(conn, notice_id)
    return {"sent": sent}


def _handle_failure(
    exc: mailer.SendError, notice_id: int, batch_no: int, attempt_id: int, recipients: list[dict]
) -> None:
    """429 → wait for the reset; 5xx/timeout → backoff until SEND_MAX_RETRIES; else failed."""
    config = current_app.config
    ids = [r["id"] for r in recipients]
    errors = max(r["transient_errors"] for r in recipients)
    if isinstance(exc, mailer.PermanentError) or (
        isinstance(exc, mailer.TransientError) and errors + 1 > config["SEND_MAX_RETRIES"]
    ):
        detail = exc.detail
        if not isinstance(exc, mailer.PermanentError):
            detail = f"gave up after {errors + 1} attempts; last error: {exc.detail}"
        with db.connection() as conn, conn.transaction():
            ledger.fail(conn, attempt_id, ids, detail, exc.status)
        log.warning("notice %s batch %s failed: %s", notice_id, batch_no, detail)
        return
    if isinstance(exc, mailer.RateLimited):
        due, outcome, transient, unknown = exc.reset_at, "rate_limited", False, False
    else:
        due = _now() + mailer.backoff(errors)
        outcome, transient, unknown = "retry", True, exc.unknown_outcome
    due = max(due, reserve_slot(len(ids)))
    with db.connection() as conn, conn.transaction():
        ledger.release(
            conn,
            attempt_id,
            ids,
            due_at=due,
            outcome=outcome,
            detail=exc.detail,
            status=exc.status,
            transient=transient,
            unknown_outcome=unknown,
        )
    _schedule_send(notice_id, batch_no, due, f"send-{notice_id}-{batch_no}-a{attempt_id}")


# --- the recovery sweep -----------------------------------------------------------------------


def ensure_sweep(delay: float | None = None) -> None:
    """Schedule the next sweep unless one is already scheduled for that slot (id = the slot)."""
    interval = current_app.config["SWEEP_INTERVAL_SECONDS"]
    at = time.time() + (interval if delay is None else delay)
    slot = math.ceil(at / interval)
    job_id = f"sweep-{slot}"
    redis = queues.redis_connection()
    if Job.exists(job_id, connection=redis):
        return
    queues.queue("default").enqueue_at(
        datetime.fromtimestamp(slot * interval, UTC),
        sweep_notices,
        job_id=job_id,
        result_ttl=60,
        failure_ttl=86400,
    )


def sweep_notices() -> dict:
    """Recover expired leases and lost jobs, start due notices, catch up, remind; then again.

    Idempotent: every step is a conditional UPDATE on the ledger, and a re-enqueued batch is
    claimed by one job at most.
    """
    config = current_app.config
    grace = max(config["SEND_LEASE_SECONDS"], config["SWEEP_INTERVAL_SECONDS"] * 2)
    stamp = int(time.time() * 1000)
    with db.connection() as conn, conn.transaction():
        expired = ledger.recover_expired(conn)
    with db.connection() as conn, conn.transaction():
        overdue = ledger.overdue_batches(conn, grace)
    for notice_id, batch_no in sorted(set(expired) | set(overdue)):
        _schedule_send(notice_id, batch_no, _now(), f"send-{notice_id}-{batch_no}-s{stamp}")
    with db.connection() as conn:
        stalled = notices.stalled_fanouts(conn, grace)
    for notice_id in stalled:
        queues.queue("fanout").enqueue(
            fan_out_notice, notice_id, job_id=f"fanout-{notice_id}-s{stamp}", job_timeout=3600
        )
    with db.connection() as conn:
        due = notices.due_scheduled(conn)
        for notice_id in due:
            with conn.transaction():
                notices.promote_scheduled(conn, notice_id)
    for notice_id in due:
        fan_out_notice(notice_id)
    caught_up = 0
    with db.connection() as conn:
        for notice_id in reminders.catch_up_candidates(conn):
            caught_up += fan_out_notice(notice_id, catch_up=True)
        created = reminders.create_due(conn, _now())
        for notice in created:
            enqueue_notice(notice)
        active = reminders.work_remains(conn)
    if active:
        ensure_sweep()
    return {
        "expired": len(expired),
        "overdue": len(overdue),
        "stalled_fanouts": len(stalled),
        "started": len(due),
        "caught_up": caught_up,
        "reminders": len(created),
    }


def enqueue_pending(notice_id: int) -> int:
    """After resume or retry: one job per pending batch, spread by the rate cap."""
    with db.connection() as conn:
        batches = ledger.pending_batches(conn, notice_id)
    stamp = int(time.time() * 1000)
    for batch_no in batches:
        due = reserve_slot(current_app.config["SEND_BATCH_SIZE"])
        _schedule_send(notice_id, batch_no, due, f"send-{notice_id}-{batch_no}-r{stamp}")
    ensure_sweep()
    return len(batches)
