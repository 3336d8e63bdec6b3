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


def decisions_connection() -> AbstractContextManager[Connection]:
    """A connection for the API's decision batches (`decisions._write`), which a process runs one
    at a time (`groupcommit`), so its pool stays small.

    Its sessions always use the batch statement's generic plan. With PostgreSQL's default
    (`plan_cache_mode = auto`) a custom plan, costed with the batch's real length, looked cheaper
    than the generic one, so the 10 KB statement was planned anew on every call: ~1 ms, more
    than the rest of the decision's database work (BENCHMARKS_pending.md). Each also holds the
    function a batch is one call of (`decisions.configure`).
    """
    return db.per_process(current_app, "fastpath_decisions", _decisions_pool).connection()


def _pool(max_size: int | None = None, configure=None, name="notifier-fastpath") -> ConnectionPool:
    app = current_app
    pool = ConnectionPool(
        app.config["DATABASE_URL"],
        min_size=1,
        max_size=max_size or max(4, app.config.get("DB_POOL_MAX", 10) // 2),
        open=False,
        timeout=5,
        kwargs={"autocommit": True, "row_factory": dict_row},
        configure=configure or _configure,
        name=name,
    )
    pool.open(wait=False)
    return pool


def _decisions_pool() -> ConnectionPool:
    return _pool(2, _configure_decisions, "notifier-decisions")


def _configure(conn: Connection) -> None:
    db.configure(conn)
    conn.execute("SET notifier.app_announces_decisions = on")


def _configure_decisions(conn: Connection) -> None:
    from . import decisions  # it uses this module's pools

    _configure(conn)
    decisions.configure(conn)


def close(app) -> None:
    db.close_per_process(app, "fastpath")
    db.close_per_process(app, "fastpath_decisions")
