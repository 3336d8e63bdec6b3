"""The audience: users of the host application — upsert, bulk, lookup, scoping, erasure."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field

from flask import current_app
from psycopg import Connection

from .errors import NotFound, ValidationError

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
LOCALE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
COLUMNS = ("external_id", "email", "name", "locale", "segment", "tags")
MAX_TAGS = 20


@dataclass
class UserInput:
    """One validated user row; `present` lists the fields the caller actually sent."""

    external_id: str
    email: str | None = None
    name: str = ""
    locale: str = "en"
    segment: str | None = None
    tags: list[str] = field(default_factory=list)
    present: frozenset[str] = frozenset()


def subject_key(external_id: str) -> str:
    """The pseudonym kept in evidence: HMAC-SHA256 of the external id under PSEUDONYM_KEY.

    Keyed, so a leaked evidence table cannot be joined back to ids by guessing; deterministic,
    so the host can still prove "this is user X" by recomputing it with the key.
    """
    key = (
        current_app.config.get("PSEUDONYM_KEY")
        or os.environ.get("PSEUDONYM_KEY")
        or current_app.config["SECRET_KEY"]
    )
    return hmac.new(key.encode(), external_id.encode(), hashlib.sha256).hexdigest()


def encodable(text: str) -> bool:
    """Text PostgreSQL can store: no NUL and no unpaired surrogate (JSON can carry "\\ud800";
    UTF-8 cannot)."""
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def storable(text: str) -> bool:
    """Text we accept in a name, segment, tag or id: `encodable` and no control characters."""
    return not CONTROL.search(text) and encodable(text)


def check_external_id(value) -> str:
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= 200
        or not storable(value)
        or "/" in value  # it is a URL path segment in the API
    ):
        raise ValidationError(
            "external_id must be 1–200 characters without '/' or control characters.",
            fields={"external_id": "1–200 characters, no '/' or control characters"},
        )
    if value.startswith("erased:"):
        raise ValidationError(
            "external_id may not start with 'erased:'.", fields={"external_id": "reserved prefix"}
        )
    return value


def parse_user(data: dict, external_id: str | None = None) -> UserInput:
    """Validate one user object (API body, bulk item or CSV row); all errors at once."""
    errors: dict[str, str] = {}
    if not isinstance(data, dict):
        raise ValidationError("Each user must be a JSON object.", fields={"user": "not an object"})
    ext = external_id if external_id is not None else data.get("external_id")
    try:
        ext = check_external_id(ext)
    except ValidationError as exc:
        errors.update(exc.fields)
    user = UserInput(external_id=ext if isinstance(ext, str) else "")
    present = set()
    email = data.get("email")
    if "email" in data:
        present.add("email")
        if email in (None, ""):
            email = None
        elif (
            not isinstance(email, str)
            or len(email) > 254
            or not EMAIL.match(email.strip())
            or not encodable(email)
        ):
            errors["email"] = "not a valid email address"
        else:
            email = email.strip()
    user.email = email
    for name, limit in (("name", 200), ("segment", 100)):
        if name not in data:
            continue
        present.add(name)
        value = data.get(name)
        if value is None or value == "":
            setattr(user, name, "" if name == "name" else None)
        elif not isinstance(value, str) or len(value) > limit or not storable(value):
            errors[name] = f"a string of at most {limit} characters, no control characters"
        else:
            setattr(user, name, value.strip())
    if "locale" in data:
        present.add("locale")
        locale = data.get("locale") or "en"
        if not isinstance(locale, str) or len(locale) > 35 or not LOCALE.match(locale):
            errors["locale"] = "a language tag such as 'en' or 'fr-CA'"
        else:
            user.locale = locale
    if "tags" in data:
        present.add("tags")
        tags = data.get("tags") or []
        if isinstance(tags, str):  # CSV cells: "a;b"
            tags = [t.strip() for t in tags.split(";") if t.strip()]
        if (
            not isinstance(tags, list)
            or len(tags) > MAX_TAGS
            or not all(isinstance(t, str) and 1 <= len(t) <= 50 and storable(t) for t in tags)
        ):
            errors["tags"] = (
                f"a list of at most {MAX_TAGS} strings of 1–50 characters, no control characters"
            )
        else:
            user.tags = sorted(set(tags))
    unknown = set(data) - set(COLUMNS)
    for name in sorted(unknown):
        errors[name] = "unknown field"
    if errors:
        raise ValidationError("Some fields are not valid.", fields=errors)
    user.present = frozenset(present)
    return user


def user_json(row: dict) -> dict:
    return {
        "external_id": row["external_id"],
        "email": row["email"],
        "name": row["name"],
        "locale": row["locale"],
        "segment": row["segment"],
        "tags": list(row["tags"] or []),
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }


def scope_of(key: dict | None) -> int | None:
    """The key id that limits which users are visible, or None for an unscoped key."""
    return key["id"] if key and key.get("scoped") else None


def find_user(conn: Connection, external_id: str, scope: int | None = None) -> dict | None:
    return conn.execute(
        """
        SELECT *
          FROM users
         WHERE external_id = %(ext)s AND erased_at IS NULL
           AND (%(scope)s::bigint IS NULL OR api_key_id = %(scope)s)
    """,
        {"ext": external_id, "scope": scope},
    ).fetchone()


def get_user(conn: Connection, external_id: str, scope: int | None = None) -> dict:
    user = find_user(conn, external_id, scope)
    if user is None:
        raise NotFound(f"No user with the external id {external_id!r}.")
    return user


def get_user_by_id(conn: Connection, user_id: int) -> dict:
    user = conn.execute("SELECT * FROM users WHERE id = %(id)s", {"id": user_id}).fetchone()
    if user is None:
        raise NotFound(f"No user with id {user_id}.")
    return user


def upsert_user(conn: Connection, user: UserInput, scope: int | None = None) -> tuple[dict, bool]:
    """Insert or update one user; (row, created). A scoped key cannot touch another's user.

    Fields the caller did not send keep their stored value on update.
    """
    row = conn.execute(
        """
        INSERT INTO users AS u (external_id, email, name, locale, segment, tags, api_key_id)
        VALUES (%(ext)s, %(email)s, %(name)s, %(locale)s, %(segment)s, %(tags)s, %(scope)s)
        ON CONFLICT (external_id) DO UPDATE
           SET email = CASE WHEN %(has_email)s THEN EXCLUDED.email ELSE u.email END,
               name = CASE WHEN %(has_name)s THEN EXCLUDED.name ELSE u.name END,
               locale = CASE WHEN %(has_locale)s THEN EXCLUDED.locale ELSE u.locale END,
               segment = CASE WHEN %(has_segment)s THEN EXCLUDED.segment ELSE u.segment END,
               tags = CASE WHEN %(has_tags)s THEN EXCLUDED.tags ELSE u.tags END,
               updated_at = now()
         WHERE %(scope)s::bigint IS NULL OR u.api_key_id = %(scope)s
        RETURNING *, (xmax = 0) AS created
    """,
        {
            "ext": user.external_id,
            "email": user.email,
            "name": user.name,
            "locale": user.locale,
            "segment": user.segment,
            "tags": user.tags,
            "scope": scope,
            **{f"has_{f}": f in user.present for f in COLUMNS[1:]},
        },
    ).fetchone()
    if row is None:  # the id exists but belongs to another key: as invisible as a missing one
        raise NotFound(f"The external id {user.external_id!r} is not available to this API key.")
    created = row.pop("created")
    return row, created
