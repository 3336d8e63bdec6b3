"""Admin accounts (argon2 password hashes), sessions, and API keys stored only as hashes."""

from __future__ import annotations

import functools
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask, g, redirect, request, session, url_for
from psycopg import Connection
from psycopg.errors import UniqueViolation

from . import db
from .errors import Conflict, Unauthorized, ValidationError

hasher = PasswordHasher()
# Verifying against a dummy hash when the email is unknown keeps sign-in timing uniform.
_DUMMY_HASH = hasher.hash("not-a-real-password")
MIN_PASSWORD = 10


def create_admin(conn: Connection, email: str, password: str) -> dict:
    email = (email or "").strip()
    if "@" not in email or len(email) > 254:
        raise ValidationError("A valid email address is required.", fields={"email": "invalid"})
    if len(password or "") < MIN_PASSWORD:
        raise ValidationError(
            f"The password must have at least {MIN_PASSWORD} characters.",
            fields={"password": f"at least {MIN_PASSWORD} characters"},
        )
    try:
        with conn.transaction():
            return conn.execute(
                """
                INSERT INTO admins (email, password_hash)
                VALUES (%(email)s, %(hash)s)
                RETURNING id, email, created_at
            """,
                {"email": email, "hash": hasher.hash(password)},
            ).fetchone()
    except UniqueViolation as exc:
        raise Conflict(f"An admin with the email {email} already exists.") from exc


def authenticate(conn: Connection, email: str, password: str) -> dict | None:
    row = conn.execute(
        "SELECT * FROM admins WHERE lower(email) = lower(%(email)s)", {"email": email or ""}
    ).fetchone()
    try:
        hasher.verify(row["password_hash"] if row else _DUMMY_HASH, password or "")
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    if hasher.check_needs_rehash(row["password_hash"]):
        conn.execute(
            "UPDATE admins SET password_hash = %(h)s WHERE id = %(id)s",
            {"h": hasher.hash(password), "id": row["id"]},
        )
    conn.execute("UPDATE admins SET last_sign_in_at = now() WHERE id = %(id)s", {"id": row["id"]})
    return {"id": row["id"], "email": row["email"]}


def admin_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if g.get("admin") is None:
            return redirect(url_for("admin.signin", next=request.full_path))
        return view(*args, **kwargs)

    return wrapped


# Pages for signed-in admins. Every other request (API, widget, public pages) reads neither the
# session nor the database here: that keeps the host-facing hot paths cheap.
ADMIN_BLUEPRINTS = frozenset({"admin", "notices", "reports", "hostadmin"})
ADMIN_ENDPOINTS = frozenset({"widget.demo_host"})


def load_admin() -> None:
    """Put the signed-in admin in `g.admin` on admin pages (app-wide before_request)."""
    g.admin = None
    if request.blueprint not in ADMIN_BLUEPRINTS and request.endpoint not in ADMIN_ENDPOINTS:
        return
    admin_id = session.get("admin_id")
    if admin_id is None:
        return
    with db.connection() as conn:
        g.admin = conn.execute(
            "SELECT id, email FROM admins WHERE id = %(id)s", {"id": admin_id}
        ).fetchone()
    if g.admin is None:
        session.clear()


# --- API keys ---------------------------------------------------------------------------------


def _digest(key: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is enough (as for GitHub tokens);
    # argon2 here would cost every API call tens of milliseconds.
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(conn: Connection, name: str, created_by: int | None) -> tuple[dict, str]:
    """Return the stored row and the key itself, which is shown once and never stored."""
    name = (name or "").strip()
    if not 1 <= len(name) <= 100:
        raise ValidationError(
            "Give the key a name of 1–100 characters.", fields={"name": "1–100 characters"}
        )
    prefix = secrets.token_hex(4)
    key = f"pn_{prefix}_{secrets.token_urlsafe(32)}"
    with conn.transaction():
        row = conn.execute(
            """
            INSERT INTO api_keys (name, prefix, key_sha256, created_by)
            VALUES (%(name)s, %(prefix)s, %(sha)s, %(by)s)
            RETURNING id, name, prefix, created_at, created_by, revoked_at
        """,
            {"name": name, "prefix": prefix, "sha": _digest(key), "by": created_by},
        ).fetchone()
    return row, key


def revoke_api_key(conn: Connection, key_id: int) -> dict | None:
    return conn.execute(
        """
        UPDATE api_keys
           SET revoked_at = now()
         WHERE id = %(id)s AND revoked_at IS NULL
        RETURNING id, name, prefix
    """,
        {"id": key_id},
    ).fetchone()


def list_api_keys(conn: Connection) -> list[dict]:
    return conn.execute("""
        SELECT id, name, prefix, created_at, revoked_at, last_used_at
          FROM api_keys
      ORDER BY revoked_at IS NOT NULL, created_at DESC
    """).fetchall()


def bearer_key() -> str:
    """The key in `Authorization: Bearer …`, or Unauthorized saying how to send one."""
    return parse_bearer(request.headers.get("Authorization", ""))


def parse_bearer(header: str) -> str:
    """The key in an `Authorization` header's value (see `bearer_key`)."""
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("Send an API key as 'Authorization: Bearer <key>'.")
    return key.strip()


def api_key_from_request(conn: Connection) -> dict:
    """The request's API key with its host settings (scoping), or Unauthorized with the reason."""
    row = conn.execute(
        """
        SELECT k.id, k.name, k.prefix, k.created_by, k.revoked_at,
               coalesce(s.scoped, false) AS scoped,
               k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute' AS stale
          FROM api_keys k
     LEFT JOIN api_key_settings s ON s.api_key_id = k.id
         WHERE k.key_sha256 = %(sha)s
    """,
        {"sha": _digest(bearer_key())},
    ).fetchone()
    if row is None:
        raise Unauthorized("This API key is not valid.")
    if row["revoked_at"] is not None:
        raise Unauthorized("This API key was revoked.")
    if row["stale"]:  # a write per minute per key, not per request
        conn.execute(
            "UPDATE api_keys SET last_used_at = now() WHERE id = %(id)s", {"id": row["id"]}
        )
    return row


def init_app(app: Flask) -> None:
    app.before_request(load_admin)
