"""Notices: the campaign that tells a version's audience about it, and its lifecycle."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from psycopg import Connection

from policy_versions.errors import Conflict, NotFound, ValidationError
from policy_versions.models import Version

from . import audit
from .security import display_zone

# A user can be emailed when they have an address that has not bounced, dropped or complained.
DELIVERABLE = "u.email IS NOT NULL AND u.email_undeliverable_at IS NULL"
OPEN_STATES = ("pending", "sending")
ACCEPTED_STATES = ("sent", "delivered", "deferred", "bounced", "dropped")


@dataclass(frozen=True)
class NoticeOptions:
    """What the admin chose at publish time; `email=None` means the verdict's default."""

    email: bool | None = None
    scheduled_at: datetime | None = None
    window_override_reason: str | None = None


def channel_defaults(verdict: str) -> tuple[bool, bool]:
    """(email, in-app) for a verdict: material both, minor in-app only, cosmetic nothing."""
    return {"material": (True, True), "minor": (False, True)}.get(verdict, (False, False))


def count_audience(conn: Connection) -> int:
    """How many users a notice sent now would email."""
    return conn.execute(f"SELECT count(*) AS n FROM users u WHERE {DELIVERABLE}").fetchone()["n"]


def notice_days(effective_at: datetime, send_at: datetime) -> int:
    """Whole calendar days of notice, counted in the display time zone.

    Calendar days, not 24-hour periods: an admin who picks "in 30 days, same time" from a form
    that drops the seconds must not fall short by a few seconds.
    """
    zone = display_zone()
    return (effective_at.astimezone(zone).date() - send_at.astimezone(zone).date()).days


def check_window(
    conn: Connection, version: Version, send_at: datetime, override_reason: str | None
) -> str | None:
    """Refuse a material change announced less than NOTICE_MIN_DAYS ahead, unless justified.

    The first version of a policy changes nothing for anyone, so it has no notice window.
    Returns the override reason that was needed, if any.
    """
    minimum = current_app.config["NOTICE_MIN_DAYS"]
    if version.verdict != "material" or not _has_predecessor(conn, version):
        return None
    days = notice_days(version.effective_at, send_at)
    if days >= minimum:
        return None
    reason = (override_reason or "").strip()
    if not reason:
        raise ValidationError(
            f"A material change needs at least {minimum} days' notice; this one gives {days}. "
            "Move the effective date, or give a reason to override the notice window.",
            fields={
                "effective_at": f"at least {minimum} days after the notice goes out ({days} given)",
                "window_override_reason": "required to give less notice",
            },
        )
    return reason


def _has_predecessor(conn: Connection, version: Version) -> bool:
    return (
        conn.execute(
            """
            SELECT 1
              FROM policy_versions
             WHERE policy_id = %(policy_id)s AND seq < %(seq)s AND published_at IS NOT NULL
             LIMIT 1
        """,
            {"policy_id": version.policy_id, "seq": version.seq},
        ).fetchone()
        is not None
    )


def create_for_publish(
    conn: Connection,
    version: Version,
    options: NoticeOptions,
    *,
    created_by: int | None,
    now: datetime,
) -> dict | None:
    """The notice of a version just published, in the publish transaction; None for cosmetic.

    Raises ValidationError (and so rolls the publish back) when the notice window is too short.
    """
    email, in_app = channel_defaults(version.verdict)
    if options.email is not None:
        email = options.email
    if not email and not in_app:
        return None
    send_at = max(options.scheduled_at or now, now)
    if options.scheduled_at is not None and options.scheduled_at >= version.effective_at:
        raise ValidationError(
            "The notice must go out before the version takes effect.",
            fields={"notice_at": "must be before the effective date"},
        )
    reason = check_window(conn, version, send_at, options.window_override_reason)
    state = "scheduled" if send_at > now else "queued"
    if not email:
        state = "done"  # in-app only: the prompt reads the version; there is nothing to send
    notice = conn.execute(
        """
        INSERT INTO notices (version_id, email, in_app, state, scheduled_at,
                             window_override_reason, created_by, finished_at)
        VALUES (%(version_id)s, %(email)s, %(in_app)s, %(state)s, %(scheduled_at)s,
                %(reason)s, %(created_by)s, CASE WHEN %(state)s = 'done' THEN now() END)
        RETURNING *
    """,
        {
            "version_id": version.id,
            "email": email,
            "in_app": in_app,
            "state": state,
            "scheduled_at": send_at,
            "reason": reason,
            "created_by": created_by,
        },
    ).fetchone()
    details = {"email": email, "in_app": in_app, "scheduled_at": send_at.isoformat()}
    if reason:
        details["window_override_reason"] = reason
        details["notice_days"] = notice_days(version.effective_at, send_at)
    audit.record(conn, "notice.created", f"notice:{notice['id']}", version_id=version.id, **details)
    return notice


def find_notice(conn: Connection, notice_id: int) -> dict | None:
    return conn.execute(
        """
        SELECT n.*, v.seq, v.policy_id, v.effective_at, v.verdict, p.slug, p.title
          FROM notices n
          JOIN policy_versions v ON v.id = n.version_id
          JOIN policies p ON p.id = v.policy_id
         WHERE n.id = %(id)s
    """,
        {"id": notice_id},
    ).fetchone()


def get_notice(conn: Connection, notice_id: int) -> dict:
    notice = find_notice(conn, notice_id)
    if notice is None:
        raise NotFound(f"No notice with id {notice_id}.")
    return notice


def notices_for_version(conn: Connection, version_id: int) -> list[dict]:
    return conn.execute(
        "SELECT * FROM notices WHERE version_id = %(id)s ORDER BY id", {"id": version_id}
    ).fetchall()


def list_notices(conn: Connection, limit: int = 200) -> list[dict]:
    return conn.execute(
        """
        SELECT n.*, v.seq, v.effective_at, p.slug, p.title
          FROM notices n
          JOIN policy_versions v ON v.id = n.version_id
          JOIN policies p ON p.id = v.policy_id
      ORDER BY n.id DESC
         LIMIT %(limit)s
    """,
        {"limit": limit},
    ).fetchall()


def counts(conn: Connection, notice_id: int) -> dict[str, int]:
    """Ledger totals by state, plus the possible duplicates, by one aggregate over the notice."""
    row = conn.execute(
        """
        SELECT count(*) AS total,
               count(*) FILTER (WHERE state = 'pending') AS pending,
               count(*) FILTER (WHERE state = 'sending') AS sending,
               count(*) FILTER (WHERE state IN ('sent', 'delivered', 'deferred', 'bounced',
                                                'dropped')) AS sent,
               count(*) FILTER (WHERE state = 'delivered') AS delivered,
               count(*) FILTER (WHERE state = 'deferred') AS deferred,
               count(*) FILTER (WHERE state = 'bounced') AS bounced,
               count(*) FILTER (WHERE state = 'dropped') AS dropped,
               count(*) FILTER (WHERE state = 'failed') AS failed,
               count(*) FILTER (WHERE state = 'cancelled') AS cancelled,
               count(*) FILTER (WHERE possible_duplicate AND state IN ('sent', 'delivered',
                                      'deferred', 'bounced', 'dropped')) AS duplicates
          FROM deliveries
         WHERE notice_id = %(id)s
    """,
        {"id": notice_id},
    ).fetchone()
    return dict(row)


def notice_json(notice: dict, totals: dict[str, int]) -> dict:
    return {
        "id": notice["id"],
        "version": {"policy": notice["slug"], "number": notice["seq"]},
        "kind": notice["kind"],
        "email": notice["email"],
        "in_app": notice["in_app"],
        "state": notice["state"],
        "scheduled_at": notice["scheduled_at"].isoformat(),
        "started_at": notice["started_at"].isoformat() if notice["started_at"] else None,
        "finished_at": notice["finished_at"].isoformat() if notice["finished_at"] else None,
        "window_override_reason": notice["window_override_reason"],
        "counts": totals,
    }


def _transition(conn: Connection, notice_id: int, allowed: tuple[str, ...], verb: str) -> dict:
    """Lock the notice and check that `verb` applies to its state, else a Conflict in words."""
    notice = conn.execute(
        "SELECT * FROM notices WHERE id = %(id)s FOR UPDATE", {"id": notice_id}
    ).fetchone()
    if notice is None:
        raise NotFound(f"No notice with id {notice_id}.")
    if notice["state"] not in allowed:
        raise Conflict(f"Notice {notice_id} is {notice['state']}; it cannot be {verb}.")
    return notice


def pause(conn: Connection, notice_id: int) -> None:
    """Stop claiming batches; requests already in flight finish."""
    _transition(conn, notice_id, ("scheduled", "queued", "sending"), "paused")
    conn.execute("UPDATE notices SET state = 'paused' WHERE id = %(id)s", {"id": notice_id})
    audit.record(conn, "notice.paused", f"notice:{notice_id}")


def resume(conn: Connection, notice_id: int) -> None:
    notice = _transition(conn, notice_id, ("paused",), "resumed")
    state = "sending" if notice["started_at"] else "queued"
    conn.execute(
        "UPDATE notices SET state = %(state)s WHERE id = %(id)s", {"id": notice_id, "state": state}
    )
    conn.execute(
        """
        UPDATE deliveries
           SET due_at = now(), updated_at = now()
         WHERE notice_id = %(id)s AND state = 'pending'
    """,
        {"id": notice_id},
    )
    audit.record(conn, "notice.resumed", f"notice:{notice_id}")


def cancel(conn: Connection, notice_id: int) -> int:
    """Cancel what has not been sent; return how many deliveries were cancelled."""
    _transition(conn, notice_id, ("scheduled", "queued", "sending", "paused"), "cancelled")
    conn.execute(
        "UPDATE notices SET state = 'cancelled', finished_at = now() WHERE id = %(id)s",
        {"id": notice_id},
    )
    cancelled = conn.execute(
        """
        UPDATE deliveries
           SET state = 'cancelled', updated_at = now()
         WHERE notice_id = %(id)s AND state = 'pending'
    """,
        {"id": notice_id},
    ).rowcount
    audit.record(conn, "notice.cancelled", f"notice:{notice_id}", deliveries_cancelled=cancelled)
    return cancelled


def send_now(conn: Connection, notice_id: int) -> None:
    """A scheduled notice goes out at once."""
    _transition(conn, notice_id, ("scheduled",), "sent now")
    conn.execute(
        "UPDATE notices SET state = 'queued', scheduled_at = now() WHERE id = %(id)s",
        {"id": notice_id},
    )
    audit.record(conn, "notice.send_now", f"notice:{notice_id}")


def retry_failed(conn: Connection, notice_id: int) -> int:
    """Put permanently failed deliveries back in the queue (after the admin fixed the cause)."""
    notice = _transition(
        conn, notice_id, ("sending", "done", "paused"), "retried (nothing has failed yet)"
    )
    retried = conn.execute(
        """
        UPDATE deliveries
           SET state = 'pending', error = NULL, transient_errors = 0, due_at = now(),
               updated_at = now()
         WHERE notice_id = %(id)s AND state = 'failed'
    """,
        {"id": notice_id},
    ).rowcount
    if retried == 0:
        raise Conflict(f"Notice {notice_id} has no failed deliveries to retry.")
    if notice["state"] == "done":
        conn.execute(
            "UPDATE notices SET state = 'sending', finished_at = NULL WHERE id = %(id)s",
            {"id": notice_id},
        )
    audit.record(conn, "notice.retried", f"notice:{notice_id}", deliveries=retried)
    return retried


def start(conn: Connection, notice_id: int) -> dict | None:
    """queued → sending when the fan-out begins; None when the notice must not go out now."""
    return conn.execute(
        """
        UPDATE notices
           SET state = CASE WHEN state = 'queued' THEN 'sending' ELSE state END,
               started_at = coalesce(started_at, now())
         WHERE id = %(id)s AND email AND state IN ('queued', 'sending')
           AND scheduled_at <= now() + interval '5 seconds'
        RETURNING *
    """,
        {"id": notice_id},
    ).fetchone()


def finish_if_done(conn: Connection, notice_id: int) -> bool:
    """sending → done once the fan-out is complete and no delivery is open."""
    return (
        conn.execute(
            """
            UPDATE notices n
               SET state = 'done', finished_at = now()
             WHERE n.id = %(id)s AND n.state = 'sending' AND n.fanout_done
               AND NOT EXISTS (
                   SELECT 1
                     FROM deliveries d
                    WHERE d.notice_id = n.id AND d.state IN ('pending', 'sending')
               )
        """,
            {"id": notice_id},
        ).rowcount
        == 1
    )


def due_scheduled(conn: Connection) -> list[int]:
    """Scheduled notices whose time has come (the sweep promotes them if a job was lost)."""
    rows = conn.execute(
        "SELECT id FROM notices WHERE state = 'scheduled' AND scheduled_at <= now()"
    ).fetchall()
    return [r["id"] for r in rows]


def stalled_fanouts(conn: Connection, grace_seconds: float) -> list[int]:
    """Notices whose fan-out job was lost (worker killed, enqueue never happened).

    Re-running a fan-out is safe even if the first is only slow: pages are taken under the
    notice's row lock and continue the shared cursor.
    """
    rows = conn.execute(
        """
        SELECT id
          FROM notices
         WHERE email
           AND ((state = 'sending' AND NOT fanout_done
                 AND started_at < now() - make_interval(secs => %(grace)s))
                OR (state = 'queued' AND scheduled_at < now() - make_interval(secs => %(grace)s)))
    """,
        {"grace": grace_seconds},
    ).fetchall()
    return [r["id"] for r in rows]


def promote_scheduled(conn: Connection, notice_id: int) -> bool:
    return (
        conn.execute(
            """
            UPDATE notices
               SET state = 'queued'
             WHERE id = %(id)s AND state = 'scheduled' AND scheduled_at <= now() + interval '5 s'
        """,
            {"id": notice_id},
        ).rowcount
        == 1
    )


def reminder_schedule() -> list[int]:
    """REMINDER_DAYS_BEFORE as a list of day counts, largest first (e.g. "7,1" → [7, 1])."""
    raw = str(current_app.config.get("REMINDER_DAYS_BEFORE") or "")
    days = sorted({int(d) for d in raw.replace(" ", "").split(",") if d.isdigit()}, reverse=True)
    return [d for d in days if d > 0]


def remind_window_open(effective_at: datetime, now: datetime, days: int) -> bool:
    return effective_at - timedelta(days=days) <= now < effective_at
