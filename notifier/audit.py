"""The append-only audit log of admin and API actions."""

from __future__ import annotations

from flask import g, has_request_context, request
from psycopg import Connection
from psycopg.types.json import Jsonb


def actor() -> tuple[int | None, str]:
    """Who is acting in this request: a signed-in admin, an API key, or the command line."""
    if has_request_context():
        admin = g.get("admin")
        if admin:
            return admin["id"], f"admin:{admin['email']}"
        key = g.get("api_key")
        if key:
            return key["created_by"], f"api-key:{key['name']} ({key['prefix']})"
    return None, "cli"


def record(conn: Connection, action: str, subject: str | None = None, **details) -> None:
    """Write one audit entry; call it in the transaction of the change it describes."""
    admin_id, who = actor()
    ip = request.remote_addr if has_request_context() else None
    conn.execute(
        """
        INSERT INTO audit_log (admin_id, actor, action, subject, details, ip)
        VALUES (%(admin_id)s, %(actor)s, %(action)s, %(subject)s, %(details)s, %(ip)s)
    """,
        {
            "admin_id": admin_id,
            "actor": who,
            "action": action,
            "subject": subject,
            "details": Jsonb(details),
            "ip": ip,
        },
    )


def list_entries(conn: Connection, *, before: int | None = None, limit: int = 100) -> list[dict]:
    """Newest first, keyset-paginated by id."""
    return conn.execute(
        """
        SELECT *
          FROM audit_log
         WHERE %(before)s::bigint IS NULL OR id < %(before)s
      ORDER BY id DESC
         LIMIT %(limit)s
    """,
        {"before": before, "limit": limit},
    ).fetchall()
