"""User-facing errors and the one handler that renders them as JSON or HTML."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask.json.provider import DefaultJSONProvider
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from policy_versions.errors import (  # noqa: F401 - re-exported for the application
    Conflict,
    Forbidden,
    NotFound,
    NotifierError,
    PayloadTooLarge,
    Unauthorized,
    ValidationError,
)

log = logging.getLogger(__name__)

INTERNAL_ERROR = "Something went wrong on our side; it is logged."


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, except that a body nested too deeply for the parser ('[[[[…') is invalid
    JSON like any other (ValueError: the request's 400/422), not a RecursionError (a 500)."""

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError as exc:
            raise ValueError("JSON nested too deeply") from exc


def wants_json() -> bool:
    if request.path.startswith("/api/") or request.path.startswith("/webhooks/"):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return (
        best == "application/json"
        and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]
    )


def render_error(status: int, code: str, message: str, fields: dict[str, str] | None = None):
    if wants_json():
        response = jsonify({"error": code, "message": message, "fields": fields or {}})
        response.status_code = status
        return response
    template = f"errors/{status}.html" if status in (401, 403, 404, 409, 413, 422, 429) else None
    body = render_template(
        template or "errors/generic.html",
        status=status,
        code=code,
        message=message,
        fields=fields or {},
    )
    return body, status


BIGINT_MAX = 2**63 - 1  # PostgreSQL's bigint: every id and cursor in this app


class IdConverter(IntegerConverter):
    """`<int:…>` in every route, up to a bigint: a larger number is a 404 from routing, not a
    database error (a 500) when it reaches a query."""

    def __init__(self, map, fixed_digits=0, min=None, max=BIGINT_MAX, signed=False) -> None:
        super().__init__(map, fixed_digits, min, max, signed)


def bigint(value: str) -> int:
    """`request.args.get(name, type=bigint)`: like `type=int`, and a number PostgreSQL cannot
    hold is ignored like any other non-number (the default is used)."""
    number = int(value)
    if not -BIGINT_MAX - 1 <= number <= BIGINT_MAX:
        raise ValueError(f"{value} is out of range")
    return number


def refuse_nul() -> None:
    """PostgreSQL text cannot hold a NUL character: a query string or form field with one is a
    422 saying so, before any view sends it to a query (an app-wide before_request)."""
    for source in (request.args, request.form):
        for name, value in source.items(multi=True):
            if "\x00" in name or "\x00" in value:
                shown = name.replace("\x00", "")
                raise ValidationError(
                    f"{shown!r} contains a NUL character.",
                    fields={shown: "text without NUL characters"},
                )


def init_app(app: Flask) -> None:
    app.json = JSONProvider(app)
    app.before_request(refuse_nul)

    @app.errorhandler(NotifierError)
    def handle_notifier_error(exc: NotifierError):
        return render_error(exc.status, exc.code, exc.message, exc.fields)

    @app.errorhandler(CSRFError)
    def handle_csrf(exc: CSRFError):
        return render_error(
            400,
            "csrf_failed",
            f"The form's security token is missing or invalid ({exc.description}). "
            "Reload the page and submit again.",
        )

    @app.errorhandler(HTTPException)
    def handle_http(exc: HTTPException):
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            message = f"The request body is larger than the limit of {limit:,} bytes."
        if status == 429:
            message = f"Too many requests: {exc.description}. Wait a little and try again."
        code = (exc.name or "error").lower().replace(" ", "_")
        return render_error(status, code, message)

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return render_error(500, "internal_error", INTERNAL_ERROR)
