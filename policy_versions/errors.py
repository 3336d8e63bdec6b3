"""Errors a caller caused and can fix; the application maps them to HTTP statuses."""

from __future__ import annotations


class NotifierError(Exception):
    """An error the user caused and can fix; the message is shown as is."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class NotFound(NotifierError):
    status = 404
    code = "not_found"


class Conflict(NotifierError):
    status = 409
    code = "conflict"


class ValidationError(NotifierError):
    status = 422
    code = "validation_error"


class Unauthorized(NotifierError):
    status = 401
    code = "unauthorized"


class Forbidden(NotifierError):
    status = 403
    code = "forbidden"


class PayloadTooLarge(NotifierError):
    status = 413
    code = "payload_too_large"
