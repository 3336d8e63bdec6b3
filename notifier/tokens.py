"""Signed, expiring tokens: the per-user acceptance link in notice emails."""

from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from .errors import NotifierError

ACCEPT_SALT = "policy-notifier/accept-link/v1"
ACCEPT_MAX_AGE = 90 * 24 * 3600  # a notice window plus reminders, with room to spare


class TokenError(NotifierError):
    status = 400
    code = "invalid_token"


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def acceptance_token(user_id: int, version_id: int, delivery_id: int | None = None) -> str:
    """A link token for one user and one version (and the delivery that carried it)."""
    return _serializer(ACCEPT_SALT).dumps({"u": user_id, "v": version_id, "d": delivery_id})


def read_acceptance_token(token: str, max_age: int = ACCEPT_MAX_AGE) -> dict:
    """`{"user_id", "version_id", "delivery_id"}`, or TokenError saying why not."""
    try:
        data = _serializer(ACCEPT_SALT).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise TokenError(
            "This link has expired. Open the latest email or sign in to the app."
        ) from exc
    except BadSignature as exc:
        raise TokenError("This link is not valid: it may have been altered or cut short.") from exc
    if not isinstance(data, dict) or not {"u", "v"} <= data.keys():
        raise TokenError("This link is not valid.")
    return {"user_id": data["u"], "version_id": data["v"], "delivery_id": data.get("d")}
