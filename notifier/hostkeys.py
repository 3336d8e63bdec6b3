"""Per-API-key host settings (scope, widget secret, browser origins, webhook) and widget tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from urllib.parse import urlsplit

from psycopg import Connection

from . import auth, hostwebhooks
from .errors import NotFound, Unauthorized, ValidationError

MAX_TOKEN_LIFETIME = 24 * 3600


# One authenticator for every /api/v1 blueprint (it reads the key's scoping too).
bearer_key = auth.bearer_key
authenticate = auth.api_key_from_request


def settings(conn: Connection, key_id: int) -> dict:
    """The key's settings, created with fresh secrets the first time they are asked for."""
    conn.execute(
        """
        INSERT INTO api_key_settings (api_key_id, widget_secret, webhook_secret)
        SELECT id, %(w)s, %(h)s FROM api_keys WHERE id = %(id)s
        ON CONFLICT (api_key_id) DO NOTHING
    """,
        {
            "id": key_id,
            "w": "pnw_" + secrets.token_urlsafe(32),
            "h": "pnh_" + secrets.token_urlsafe(32),
        },
    )
    row = conn.execute(
        """
        SELECT s.*, k.name, k.prefix, k.revoked_at
          FROM api_key_settings s
          JOIN api_keys k ON k.id = s.api_key_id
         WHERE s.api_key_id = %(id)s
    """,
        {"id": key_id},
    ).fetchone()
    if row is None:
        raise NotFound(f"No API key with id {key_id}.")
    return row


def parse_origins(text: str) -> list[str]:
    """One origin per line or comma: scheme://host[:port], nothing else."""
    origins, bad = [], []
    for raw in (text or "").replace(",", "\n").splitlines():
        value = raw.strip().rstrip("/")
        if not value:
            continue
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
            bad.append(value)
        else:
            origins.append(f"{parts.scheme}://{parts.netloc.lower()}")
    if bad:
        raise ValidationError(
            f"Not an origin: {', '.join(bad)}. Write scheme://host[:port], e.g. https://app.example.com.",
            fields={"allowed_origins": "scheme://host[:port], one per line"},
        )
    return sorted(set(origins))


def update_settings(
    conn: Connection,
    key_id: int,
    *,
    scoped: bool,
    origins: list[str],
    webhook_url: str | None,
    allow_private: bool = False,
) -> dict:
    """Save the key's settings; a webhook URL aimed at an internal address is refused.

    :param allow_private: HOST_WEBHOOK_ALLOW_PRIVATE, for local development and tests.
    """
    problem = webhook_url and hostwebhooks.url_problem(webhook_url, allow_private=allow_private)
    if problem:
        raise ValidationError(
            f"The webhook URL was not saved: {problem}. Webhooks go only to public "
            "http(s) addresses, e.g. https://app.example.com/hooks/policy.",
            fields={"webhook_url": problem},
        )
    settings(conn, key_id)
    conn.execute(
        """
        UPDATE api_key_settings
           SET scoped = %(scoped)s, allowed_origins = %(origins)s, webhook_url = %(url)s,
               updated_at = now()
         WHERE api_key_id = %(id)s
    """,
        {"id": key_id, "scoped": scoped, "origins": origins, "url": webhook_url or None},
    )
    return settings(conn, key_id)


def origin_allowed_anywhere(conn: Connection, origin: str) -> bool:
    row = conn.execute(
        """
        SELECT 1
          FROM api_key_settings s
          JOIN api_keys k ON k.id = s.api_key_id
         WHERE k.revoked_at IS NULL AND %(origin)s = ANY (s.allowed_origins)
         LIMIT 1
    """,
        {"origin": origin},
    ).fetchone()
    return row is not None


# --- widget user tokens ---------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def widget_token(prefix: str, secret: str, external_id: str, expires_at: int) -> str:
    """What the host computes on its server: payload "." HMAC-SHA256(secret, payload)."""
    payload = _b64(json.dumps({"k": prefix, "sub": external_id, "exp": expires_at}).encode())
    mac = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(mac)}"


def read_widget_token(conn: Connection, token: str, now: float | None = None) -> tuple[dict, str]:
    """(key settings, external id) for a valid token; Unauthorized saying why otherwise."""
    now = now or time.time()
    payload, _, mac = (token or "").partition(".")
    try:
        data = json.loads(_unb64(payload))
        given = _unb64(mac)
        prefix, external_id, expires = data["k"], data["sub"], int(data["exp"])
        assert isinstance(prefix, str) and isinstance(external_id, str)
    except (ValueError, KeyError, TypeError, AssertionError, OverflowError, RecursionError) as exc:
        raise Unauthorized("The widget token is malformed.") from exc
    key = conn.execute(
        """
        SELECT k.id, k.name, k.prefix, k.created_by, k.revoked_at, s.scoped, s.widget_secret,
               s.allowed_origins
          FROM api_keys k
          JOIN api_key_settings s ON s.api_key_id = k.id
         WHERE k.prefix = %(prefix)s
    """,
        {"prefix": prefix},
    ).fetchone()
    if key is None or key["revoked_at"] is not None:
        raise Unauthorized("The widget token was signed with an unknown or revoked key.")
    expected = hmac.new(key["widget_secret"].encode(), payload.encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, given):
        raise Unauthorized("The widget token's signature is not valid.")
    if expires < now:
        raise Unauthorized("The widget token has expired; the host page must sign a new one.")
    if expires > now + MAX_TOKEN_LIFETIME:
        raise Unauthorized("The widget token lives too long; sign tokens for at most 24 hours.")
    return key, external_id
