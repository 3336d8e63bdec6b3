"""Retention: purge operational logs past a configured age; acceptance evidence is never purged."""

from __future__ import annotations

from datetime import datetime, timedelta

from psycopg import Connection

# (table, timestamp column, extra condition). Deliveries themselves stay: an acceptance points at
# the delivery that carried its notice, and that link is part of the evidence.
PURGEABLE = (
    ("delivery_events", "received_at", "TRUE"),
    ("send_attempts", "claimed_at", "finished_at IS NOT NULL"),
    ("outbox", "created_at", "TRUE"),
    ("host_webhook_events", "created_at", "state IN ('delivered', 'failed')"),
)


def purge(conn: Connection, older_than_days: int, *, now: datetime, dry_run: bool = False) -> dict:
    """Delete (or, with dry_run, count) rows older than the cut-off; return counts per table."""
    if older_than_days < 1:
        raise ValueError("older_than_days must be at least 1")
    cutoff = now - timedelta(days=older_than_days)
    counts: dict[str, int] = {}
    with conn.transaction():
        for table, column, condition in PURGEABLE:
            # Identifiers come from the constant above, never from input.
            verb = "SELECT count(*) AS n FROM" if dry_run else "WITH gone AS (DELETE FROM"
            tail = "" if dry_run else " RETURNING 1) SELECT count(*) AS n FROM gone"
            row = conn.execute(
                f"{verb} {table} WHERE {column} < %(cutoff)s AND {condition}{tail}",  # noqa: S608
                {"cutoff": cutoff},
            ).fetchone()
            counts[table] = row["n"]
    return counts
