"""Data-subject rights: export everything about a user; erase them while keeping the evidence."""

from __future__ import annotations

from datetime import UTC, datetime

from psycopg import Connection

from . import audience, audit, evidence


def _has(conn: Connection, table: str) -> bool:
    return conn.execute("SELECT to_regclass(%(t)s) IS NOT NULL AS ok", {"t": table}).fetchone()[
        "ok"
    ]


def export(conn: Connection, user: dict) -> dict:
    """Every piece of data held about this user, as JSON-ready values."""
    data = {
        "exported_at": datetime.now(UTC).isoformat(),
        "user": audience.user_json(user) | {"id": user["id"]},
        "subject_key": audience.subject_key(user["external_id"]),
        "acceptances": [evidence.row_json(r) for r in evidence.rows_for(conn, user_id=user["id"])],
        "deliveries": [],
        "webhook_events": [],
    }
    if _has(conn, "public.deliveries"):
        data["deliveries"] = [
            {**r, "sent_at": r["sent_at"] and r["sent_at"].isoformat()}
            for r in conn.execute(
                """
                SELECT d.id, d.notice_id, n.version_id, d.state, d.email, d.sent_at
                  FROM deliveries d
                  JOIN notices n ON n.id = d.notice_id
                 WHERE d.user_id = %(id)s
              ORDER BY d.id
            """,
                {"id": user["id"]},
            )
        ]
    data["webhook_events"] = [
        {**r, "created_at": r["created_at"].isoformat()}
        for r in conn.execute(
            """
            SELECT e.id, e.event, e.state, e.payload, e.created_at
              FROM host_webhook_events e
              JOIN acceptances a ON a.id = e.acceptance_id
             WHERE a.user_id = %(id)s
          ORDER BY e.id
        """,
            {"id": user["id"]},
        )
    ]
    return data


def erase(conn: Connection, user: dict) -> dict:
    """Remove personal data; keep the evidence under the keyed pseudonym (same transaction).

    The user row stays (evidence references it) with its external id replaced by the pseudonym,
    so a later PUT of the same external id creates a new, unrelated row. Acceptance context (IP,
    user agent, email at the time) is deleted: the chain covers only its salted digest.
    """
    subject = audience.subject_key(user["external_id"])
    pseudonym = f"erased:{subject[:32]}:{user['id']}"
    conn.execute(
        """
        UPDATE users
           SET external_id = %(pseudonym)s, email = NULL, name = '', segment = NULL, tags = '{}',
               erased_at = now(), updated_at = now()
         WHERE id = %(id)s
    """,
        {"pseudonym": pseudonym, "id": user["id"]},
    )
    contexts = conn.execute(
        """
        DELETE FROM acceptance_context
         WHERE acceptance_id IN (SELECT id FROM acceptances WHERE user_id = %(id)s)
    """,
        {"id": user["id"]},
    ).rowcount
    conn.execute(
        """
        UPDATE host_webhook_events
           SET payload = jsonb_set(
                   payload, '{acceptance,external_id}', to_jsonb(%(pseudonym)s::text)
               )
         WHERE acceptance_id IN (SELECT id FROM acceptances WHERE user_id = %(id)s)
    """,
        {"pseudonym": pseudonym, "id": user["id"]},
    )
    if _has(conn, "public.deliveries"):
        # The notices module's tables keep the address each email went to and provider events.
        conn.execute(
            "UPDATE deliveries SET email = NULL WHERE user_id = %(id)s", {"id": user["id"]}
        )
        if _has(conn, "public.delivery_events"):
            conn.execute(
                """
                UPDATE delivery_events
                   SET email = NULL, payload = '{}'::jsonb
                 WHERE delivery_id IN (SELECT id FROM deliveries WHERE user_id = %(id)s)
            """,
                {"id": user["id"]},
            )
        if _has(conn, "public.outbox"):
            conn.execute(
                """
                DELETE FROM outbox
                 WHERE delivery_id IN (SELECT id FROM deliveries WHERE user_id = %(id)s)
            """,
                {"id": user["id"]},
            )
    # Audit subjects name the internal id, never the external id or email (the log is permanent).
    audit.record(conn, "user.erased", f"user:#{user['id']}", contexts_erased=contexts)
    return {"erased": True, "subject_key": subject, "pseudonym": pseudonym}
