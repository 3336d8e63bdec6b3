"""Apply the SQL migrations in notifier/migrations with yoyo."""

from __future__ import annotations

from pathlib import Path

from yoyo import get_backend, read_migrations

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _backend(url: str):
    return get_backend(url.replace("postgresql://", "postgresql+psycopg://", 1))


def upgrade(url: str) -> list[str]:
    """Apply every pending migration; return their ids."""
    backend = _backend(url)
    try:
        migrations = read_migrations(str(MIGRATIONS))
        with backend.lock():
            todo = backend.to_apply(migrations)
            backend.apply_migrations(todo)
        return [m.id for m in todo]
    finally:
        backend.connection.close()


def pending(url: str) -> list[str]:
    backend = _backend(url)
    try:
        return [m.id for m in backend.to_apply(read_migrations(str(MIGRATIONS)))]
    finally:
        backend.connection.close()
