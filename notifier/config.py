"""Configuration from the environment, with typed helpers and safe defaults."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ROOT = Path(__file__).resolve().parent.parent


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from exc


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be a number, got {raw!r}") from exc


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


def _secret_key(data_dir: Path) -> str:
    """SECRET_KEY from the environment, else one generated once and kept in the data folder.

    A fresh random key per start would sign everyone out and break links in emails already sent.
    """
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = data_dir / "secret_key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def config_from_env() -> dict:
    data_dir = Path(os.environ.get("NOTIFIER_DATA_DIR", ROOT / ".data")).resolve()
    tz = os.environ.get("DISPLAY_TIMEZONE", "Europe/Paris")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SystemExit(f"DISPLAY_TIMEZONE {tz!r} is not an IANA time zone") from exc
    return {
        "DATABASE_URL": os.environ.get("DATABASE_URL") or None,
        "REDIS_URL": os.environ.get("REDIS_URL") or None,
        "NOTIFIER_DATA_DIR": str(data_dir),
        "SECRET_KEY": _secret_key(data_dir),
        "DISPLAY_TIMEZONE": tz,
        "PUBLIC_BASE_URL": os.environ.get("PUBLIC_BASE_URL", "").rstrip("/") or None,
        "SENDGRID_API_KEY": os.environ.get("SENDGRID_API_KEY") or None,
        "SENDGRID_API_HOST": os.environ.get("SENDGRID_API_HOST", "https://api.sendgrid.com"),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "legal@policy-notifier.example"),
        "MAIL_REPLY_TO": os.environ.get("MAIL_REPLY_TO") or None,
        "MAX_MARKDOWN_BYTES": _int("MAX_MARKDOWN_BYTES", 1_000_000),
        "MAX_CONTENT_LENGTH": _int("MAX_REQUEST_BYTES", 16 * 1024 * 1024),
        "SIGNIN_RATE_LIMIT": os.environ.get("SIGNIN_RATE_LIMIT", "10 per 15 minutes"),
        "SESSION_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", False),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        "DB_POOL_MAX": _int("DB_POOL_MAX", 10),
        # Pending answers kept in memory per process (notifier/pendingcache.py).
        "PENDING_CACHE": _bool("PENDING_CACHE", True),
        "PENDING_CACHE_USERS": _int("PENDING_CACHE_USERS", 200_000),
        "PENDING_CACHE_MAX_AGE": _int("PENDING_CACHE_MAX_AGE", 3600),
        "PENDING_CACHE_STRICT": _bool("PENDING_CACHE_STRICT", False),
        "RETENTION_DAYS": _int("RETENTION_DAYS", 400),
        # Notices and sending (docs/notifications.md).
        "NOTICE_MIN_DAYS": _int("NOTICE_MIN_DAYS", 30),
        "REMINDER_DAYS_BEFORE": os.environ.get("REMINDER_DAYS_BEFORE", "7"),
        "SEND_BATCH_SIZE": min(_int("SEND_BATCH_SIZE", 1000), 1000),
        "SEND_RATE_PER_HOUR": _int("SEND_RATE_PER_HOUR", 0),  # 0: no cap
        "SEND_MAX_RETRIES": _int("SEND_MAX_RETRIES", 8),
        "SEND_RETRY_BASE_SECONDS": _float("SEND_RETRY_BASE_SECONDS", 30.0),
        "SEND_RETRY_MAX_SECONDS": _float("SEND_RETRY_MAX_SECONDS", 3600.0),
        "SEND_LEASE_SECONDS": _int("SEND_LEASE_SECONDS", 300),
        "SENDGRID_TIMEOUT": _float("SENDGRID_TIMEOUT", 30.0),
        "SENDGRID_WEBHOOK_PUBLIC_KEY": os.environ.get("SENDGRID_WEBHOOK_PUBLIC_KEY") or None,
        "WEBHOOK_MAX_AGE_SECONDS": _int("WEBHOOK_MAX_AGE_SECONDS", 300),
        "SWEEP_INTERVAL_SECONDS": _float("SWEEP_INTERVAL_SECONDS", 60.0),
        # Host webhooks to loopback/private addresses: local development and tests only.
        "HOST_WEBHOOK_ALLOW_PRIVATE": _bool("HOST_WEBHOOK_ALLOW_PRIVATE", False),
    }
