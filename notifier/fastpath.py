"""A second, smaller connection pool for the API's hot paths, without per-checkout checks.

The main pool runs `check_connection` (a round trip) on every checkout; on the endpoints a host
calls on every page load or decision that doubles the database work. A dead connection here
fails one query, is discarded by the pool, and the caller retries once.

Decisions written on these connections are not announced by the `acceptances` trigger (see
migration 0007: NOTIFY serialises commits); `decisions.decide` announces them itself.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from flask import current_app
from psycopg import Connection
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from . import db


def connection() -> AbstractContextManager[Connection]:
    return db.per_process(current_app, "fastpath", _pool).connection()


def _pool() -> ConnectionPool:
    app = current_app
    pool = ConnectionPool(
        app.config["DATABASE_URL"],
        min_size=1,
        max_size=max(4, app.config.get("DB_POOL_MAX", 10) // 2),
        open=False,
        timeout=5,
        kwargs={"autocommit": True, "row_factory": dict_row},
        configure=_configure,
        name="notifier-fastpath",
    )
    pool.open(wait=False)
    return pool


def _configure(conn: Connection) -> None:
    db.configure(conn)
    conn.execute("SET notifier.app_announces_decisions = on")


def close(app) -> None:
    db.close_per_process(app, "fastpath")
