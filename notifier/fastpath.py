"""A second, smaller connection pool for the API's hot paths, without per-checkout checks.

The main pool runs `check_connection` (a round trip) on every checkout; on the endpoints a host
calls on every page load or decision that doubles the database work. A dead connection here
fails one query, is discarded by the pool, and the caller retries once.

Decisions written on these connections are not announced by the `acceptances` trigger (see
migration 0007: NOTIFY serialises commits); `decisions.decide` announces them itself.
"""

from __future__ import annotations

import os
import threading
from contextlib import AbstractContextManager

from flask import current_app
from psycopg import Connection
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from . import db

_lock = threading.Lock()


def connection() -> AbstractContextManager[Connection]:
    app = current_app._get_current_object()
    state = app.extensions.setdefault("fastpath", {})
    pool = state.get("pool")
    if pool is None or state.get("pid") != os.getpid():
        with _lock:
            pool = state.get("pool")
            if pool is None or state.get("pid") != os.getpid():
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
                state.update(pool=pool, pid=os.getpid())
    return pool.connection()


def _configure(conn: Connection) -> None:
    db.configure(conn)
    conn.execute("SET notifier.app_announces_decisions = on")


def close(app) -> None:
    state = app.extensions.get("fastpath") or {}
    if state.get("pool") is not None and state.get("pid") == os.getpid():
        state["pool"].close()
        state["pool"] = None
