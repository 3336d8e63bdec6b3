"""Reminders before the effective date, catch-up for users who arrive during the notice window."""

from __future__ import annotations

from datetime import datetime, timedelta

from psycopg import Connection

from . import audit, notices

# Not yet accepted, and not emailed about this version in the last day (reminders never stack
# on top of a notice or another reminder still fresh in the inbox).
REMINDER_AUDIENCE = """
    AND NOT EXISTS (
        SELECT 1
          FROM deliveries d2
          JOIN notices n2 ON n2.id = d2.notice_id
         WHERE n2.version_id = %(version_id)s AND d2.user_id = u.id
           AND d2.sent_at > now() - interval '1 day'
    )
"""
NOT_ACCEPTED = """
    AND NOT EXISTS (
        SELECT 1 FROM acceptances a WHERE a.user_id = u.id AND a.version_id = %(version_id)s
    )
"""


def _has_acceptances(conn: Connection) -> bool:
    """The acceptances table comes with another migration; reminders work before it lands."""
    return conn.execute("SELECT to_regclass('acceptances') IS NOT NULL AS ok").fetchone()["ok"]


def audience(conn: Connection, notice_id: int) -> dict:
    """Extra audience condition for `ledger.fan_out_page`: reminders skip who accepted."""
    notice = conn.execute(
        "SELECT kind, version_id FROM notices WHERE id = %(id)s", {"id": notice_id}
    ).fetchone()
    if notice is None or notice["kind"] != "reminder":
        return {}
    sql = REMINDER_AUDIENCE + (NOT_ACCEPTED if _has_acceptances(conn) else "")
    return {"audience_sql": sql, "params": {"version_id": notice["version_id"]}}


def email_context(conn: Connection, notice_id: int) -> tuple[dict, dict]:
    """The notice and what its email shows of the version."""
    notice = notices.get_notice(conn, notice_id)
    version = conn.execute(
        """
        SELECT v.id, v.seq, v.summary, v.effective_at, v.classification, v.acceptance_mode,
               p.slug, p.title
          FROM policy_versions v
          JOIN policies p ON p.id = v.policy_id
         WHERE v.id = %(id)s
    """,
        {"id": notice["version_id"]},
    ).fetchone()
    return notice, version


def catch_up_candidates(conn: Connection) -> list[int]:
    """Finished notices whose window is still open and who now have users without a delivery.

    Such notices are reopened (done → sending) in the same statement, for the caller to fan out.
    """
    rows = conn.execute(
        f"""
        UPDATE notices n
           SET state = 'sending', fanout_done = false, finished_at = NULL
          FROM policy_versions v
         WHERE v.id = n.version_id AND n.kind = 'notice' AND n.email AND n.state = 'done'
           AND v.effective_at > now()
           AND EXISTS (
               SELECT 1
                 FROM users u
                WHERE {notices.DELIVERABLE}
                  AND NOT EXISTS (
                      SELECT 1 FROM deliveries d WHERE d.notice_id = n.id AND d.user_id = u.id
                  )
           )
        RETURNING n.id
    """
    ).fetchall()
    return [r["id"] for r in rows]


def create_due(conn: Connection, now: datetime) -> list[dict]:
    """Create the reminder notices now due: the nearest interval only, once per version.

    With REMINDER_DAYS_BEFORE="7,1", a version published 3 days before its date gets the 1-day
    reminder only, never the 7-day one late; each (version, interval) exists at most once.
    """
    schedule = notices.reminder_schedule()
    if not schedule:
        return []
    versions = conn.execute(
        """
        SELECT v.id, v.effective_at, n.id AS notice_id
          FROM notices n
          JOIN policy_versions v ON v.id = n.version_id
         WHERE n.kind = 'notice' AND n.email AND n.state = 'done'
           AND v.acceptance_mode = 'explicit'
           AND v.effective_at > %(now)s
           AND v.effective_at - make_interval(days => %(longest)s) <= %(now)s
    """,
        {"now": now, "longest": max(schedule)},
    ).fetchall()
    created = []
    for v in versions:
        open_days = [d for d in schedule if notices.remind_window_open(v["effective_at"], now, d)]
        if not open_days:
            continue
        days = min(open_days)
        with conn.transaction():
            notice = conn.execute(
                """
                INSERT INTO notices (version_id, kind, reminder_days, email, in_app, state,
                                     scheduled_at)
                SELECT %(version_id)s, 'reminder', %(days)s, true, false, 'queued', now()
                 WHERE NOT EXISTS (
                     SELECT 1
                       FROM notices
                      WHERE version_id = %(version_id)s AND kind = 'reminder'
                        AND reminder_days <= %(days)s
                 )
                ON CONFLICT (version_id, kind, reminder_days) DO NOTHING
                RETURNING *
            """,
                {"version_id": v["id"], "days": days},
            ).fetchone()
            if notice is not None:
                audit.record(
                    conn, "notice.reminder_created", f"notice:{notice['id']}", days_before=days
                )
                created.append(notice)
    return created


def work_remains(conn: Connection) -> bool:
    """Keep sweeping while a notice is open or an emailed version has not yet taken effect."""
    return conn.execute(
        """
        SELECT EXISTS (
            SELECT 1
              FROM notices n
              JOIN policy_versions v ON v.id = n.version_id
             WHERE n.email
               AND (n.state IN ('scheduled', 'queued', 'sending', 'paused')
                    OR (n.state = 'done' AND v.effective_at > now() - interval '1 day'))
        ) AS busy
    """
    ).fetchone()["busy"]


def remind_after(effective_at: datetime, days: int) -> datetime:
    return effective_at - timedelta(days=days)
