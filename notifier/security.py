"""CSRF, sign-in rate limiting, security headers and the template helpers for dates."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask, current_app, request
from flask.sessions import SecureCookieSessionInterface
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, strategy="fixed-window")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
)
HSTS = ("Strict-Transport-Security", "max-age=31536000")


def headers(secure: bool) -> tuple[tuple[str, str], ...]:
    """The headers every response carries (over HTTPS, HSTS too)."""
    return HEADERS + (HSTS,) if secure else HEADERS


def limiter_storage_uri(redis_url: str) -> str:
    """Flask-Limiter names a Unix-socket Redis `redis+unix://`."""
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url.removeprefix("unix://")
    return redis_url


def _limits_outside_decorators() -> bool:
    """Whether Flask-Limiter's before-request check can find any limit to apply.

    A `@limiter.limit` route is checked by its decorator, when the view is called; the
    app-wide before-request hook only applies default, application, meta, blueprint and
    in-memory-fallback limits. With none of those configured (this app limits sign-in only)
    the hook evaluates nothing, yet costs ~0.2 ms of every request. Unknown library internals
    count as "yes", so an upgrade can only make the check run again, never skip a limit.
    """
    manager = limiter.limit_manager
    return bool(
        manager.application_limits
        or manager.default_limits
        or getattr(manager, "_blueprint_limits", True)
        or getattr(limiter, "_meta_limits", True)
        or getattr(limiter, "_in_memory_fallback", True)
    )


def _check_request_limit() -> None:
    if _limits_outside_decorators():
        limiter._check_request_limit()


def _only_check_when_needed(app: Flask) -> None:
    """Swap Flask-Limiter's before-request hook for one that runs only when it can matter."""
    hooks = app.before_request_funcs.setdefault(None, [])
    for i, hook in enumerate(hooks):
        if hook == limiter._check_request_limit:  # bound methods compare by instance + function
            hooks[i] = _check_request_limit


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, without building a signer for requests with no cookie.

    API calls carry no session cookie; Flask opens a session for every request anyway and the
    default interface builds an itsdangerous serializer (key derivation included) first. The
    answer is the same: an empty new session, or None (no session) without a secret key.
    """

    def open_session(self, app, request):
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def display_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["DISPLAY_TIMEZONE"])


def localtime(value: datetime | None, fmt: str = "%-d %b %Y, %H:%M %Z") -> str:
    """A timestamp in the configured display zone, with the zone named."""
    if value is None:
        return "—"
    return value.astimezone(display_zone()).strftime(fmt)


def localdate(value: datetime | None) -> str:
    return localtime(value, "%-d %B %Y")


def init_app(app: Flask) -> None:
    csrf.init_app(app)
    app.config.setdefault("RATELIMIT_STORAGE_URI", limiter_storage_uri(app.config["REDIS_URL"]))
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    # A Redis outage must not lock admins out: fall back to counting in memory.
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    limiter.init_app(app)
    _only_check_when_needed(app)
    if type(app.session_interface) is SecureCookieSessionInterface:
        app.session_interface = SessionInterface()
    app.jinja_env.filters["localtime"] = localtime
    app.jinja_env.filters["localdate"] = localdate
    app.jinja_env.globals["display_timezone"] = lambda: app.config["DISPLAY_TIMEZONE"]

    @app.after_request
    def security_headers(response):
        for name, value in headers(request.is_secure):
            response.headers.setdefault(name, value)
        return response
