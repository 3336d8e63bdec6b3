"""The decision POSTs' and pending GETs' plain requests, answered without Flask's machinery.

`POST /api/v1/users/<external_id>/acceptances` (and `/declines`) is what a host calls for every
click on "I accept". Flask's own work per request (request context, URL matching, the app's
before/after hooks, session, response object) measured ~0.4 ms of the ~1.3 ms of Python a
decision costs (BENCHMARKS_pending.md, Dec 6 fifth session). This WSGI middleware answers the
plain case itself — a well-formed JSON body that `decisions.decide` records or finds — with the
same functions the Flask view calls, and adds what the app's hooks add to every response (the
security headers, `X-Request-Id`, the request metrics and log line).

Everything else goes to Flask unchanged, which stays the reference: another route; a body that
is not a small JSON object; a missing key; any 4xx that `decide` raises (nothing was written, so
the view runs it again and renders the error exactly as for any request); an exception. The
body read here is handed on to Flask, so a fallback sees the request as sent.

`GET /api/v1/users/<external_id>/pending`, called on every page load of the host application,
goes the same way: the lane answers a request with no query string, for a host whose base URL
Flask has already worked out (`acceptances.known_url_root`), with what `pendingcache.answer`
gives: the answer, or its 401/404 rendered as the app's error handler renders it (asking Flask
instead would read an unknown user from the database a second time). A missing or malformed
key or id, a query string, a first request from a host, a lost connection (the view retries
it) go to Flask. Flask's share of such a request was most of its cost (BENCHMARKS_pending.md,
eighth session).
"""

from __future__ import annotations

import io
import logging
import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from flask import Flask
from werkzeug.http import HTTP_STATUS_CODES

from . import (
    acceptances,
    audience,
    auth,
    decisions,
    hostwebhooks,
    observability,
    pendingcache,
    security,
)
from .errors import INTERNAL_ERROR, NotifierError

log = logging.getLogger(__name__)

ROUTE = re.compile(r"/api/v1/users/([^/]+)/(acceptances|declines)")
PENDING_ROUTE = re.compile(r"/api/v1/users/([^/]+)/pending")
PENDING_ENDPOINT = "users_api.pending"
NOOP_QUERY = re.compile(r"lane=1(&db=0)?(&u=[\w-]*)?")  # `make bench-pending`'s lane no-op
DECISIONS = {"acceptances": "accepted", "declines": "declined"}
ENDPOINTS = {"acceptances": "users_api.acceptance_create", "declines": "users_api.decline_create"}
STATUS = {code: f"{code} {name.upper()}" for code, name in HTTP_STATUS_CODES.items()}  # werkzeug's


class DecisionLane:
    """WSGI middleware around `app.wsgi_app` (kept as `flask`): see the module's docstring."""

    def __init__(self, app: Flask, flask_wsgi_app: Callable) -> None:
        self.app = app
        self.flask = flask_wsgi_app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        if method not in ("POST", "GET"):
            return self.flask(environ, start_response)
        # As Werkzeug reads PATH_INFO (WSGI hands it over as latin-1).
        path = environ.get("PATH_INFO", "")
        if not (path.isascii() or max(path) <= "\xff"):
            return self.flask(environ, start_response)
        path = path.encode("latin1").decode(errors="replace")
        started = time.perf_counter()
        answer = None
        if method == "GET":
            match = PENDING_ROUTE.fullmatch(path)
            if match is not None and not environ.get("QUERY_STRING") and self._compact_json():
                answer = self._pending(environ, match)
                endpoint = PENDING_ENDPOINT
                extra = [("Cache-Control", "no-store")] if answer and answer[0] == 200 else []
            elif path == "/api/v1/noop" and NOOP_QUERY.fullmatch(environ.get("QUERY_STRING", "")):
                # The benchmark's baseline for what the lane itself costs: the no-op's answer.
                answer, endpoint, extra = (200, b'{"ok":true}\n'), "users_api.noop", []
        else:
            match = ROUTE.fullmatch(path)
            if match is not None and self._compact_json():
                answer = self._answer(environ, match)
                endpoint, extra = ENDPOINTS.get(match.group(2)), []
        if answer is None:
            return self.flask(environ, start_response)
        status, body = answer
        rid = observability.request_id(environ.get("HTTP_X_REQUEST_ID"))
        headers = [
            ("Content-Type", self.app.json.mimetype),
            ("Content-Length", str(len(body))),
            *extra,
            *security.headers(environ.get("wsgi.url_scheme") == "https"),
            ("X-Request-Id", rid),
        ]
        start_response(STATUS[status], headers)
        observability.answered(
            method, path, endpoint, status, started, rid, environ.get("REMOTE_ADDR")
        )
        return [body]

    def _pending(self, environ: dict, match: re.Match) -> tuple[int, bytes] | None:
        """(status, body) for what `pendingcache.answer` gives; None to let Flask answer."""
        base = acceptances.known_url_root(environ)
        caller = _caller(environ, match)
        if base is None or caller is None:
            return None
        sha, external_id = caller
        with self.app.app_context():
            try:
                text = pendingcache.answer(sha, external_id, datetime.now(UTC), base)
            except NotifierError as exc:  # as the app's handler renders it
                return exc.status, self._error(exc.code, exc.message, exc.fields)
            except Exception:  # a lost connection (the view retries once), anything unforeseen
                return None
        return 200, text.encode()

    def _compact_json(self) -> bool:
        """Whether `jsonify` writes compact JSON (not in debug mode): the lane writes only that."""
        compact = self.app.json.compact
        return compact is True or (compact is None and not self.app.debug)

    def _answer(self, environ: dict, match: re.Match) -> tuple[int, bytes] | None:
        """(status, body) for a decision recorded or found; None to let Flask answer."""
        data = self._json_object(environ)
        caller = _caller(environ, match)
        if data is None or caller is None:
            return None
        sha, external_id = caller
        try:
            asked = decisions.parse_request(data, DECISIONS[match.group(2)])
        except NotifierError:
            return None
        with self.app.app_context():
            try:
                row, version, created, events = decisions.decide(
                    sha, external_id, asked, datetime.now(UTC)
                )
            except NotifierError:
                return None  # nothing was written: Flask runs it again and renders the error
            except Exception:
                log.exception("decision lane: handing %s to Flask", match.group(0))
                return None
            try:
                hostwebhooks.enqueue(events)
                text = self.app.json.dumps(
                    acceptances.acceptance_json(row, version), separators=(",", ":")
                )
            except Exception:  # as the app's handler answers an unexpected error
                log.exception("unhandled error on POST %s", match.group(0))
                return 500, self._error("internal_error", INTERNAL_ERROR)
        return (201 if created else 200), f"{text}\n".encode()

    def _json_object(self, environ: dict) -> dict | None:
        """The body as a JSON object, if it is one within the API's limits; the body is put
        back for Flask either way."""
        content_type = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        length = environ.get("CONTENT_LENGTH", "")
        if content_type != "application/json" or not length.isdigit():
            return None
        config = self.app.config
        limit = min(
            config["MAX_MARKDOWN_BYTES"] + 64 * 1024,  # as `api.json_body`
            config.get("MAX_CONTENT_LENGTH") or float("inf"),
        )
        if not 0 < int(length) <= limit:
            return None
        raw = environ["wsgi.input"].read(int(length))
        environ["wsgi.input"] = io.BytesIO(raw)
        if len(raw) != int(length):
            return None
        try:
            data = self.app.json.loads(raw.decode())  # as Flask's (errors.JSONProvider)
        except ValueError:  # not UTF-8, not JSON, nested too deep
            return None
        return data if isinstance(data, dict) else None

    def _error(self, code: str, message: str, fields: dict | None = None) -> bytes:
        """An error's JSON body, as `errors.render_error` writes it for the API."""
        body = {"error": code, "message": message, "fields": fields or {}}
        return f"{self.app.json.dumps(body, separators=(',', ':'))}\n".encode()


def _caller(environ: dict, match: re.Match) -> tuple[str, str] | None:
    """(the API key's digest, the user's external id), or None if either is malformed."""
    try:
        return (
            auth._digest(auth.parse_bearer(environ.get("HTTP_AUTHORIZATION", ""))),
            audience.check_external_id(match.group(1)),
        )
    except NotifierError:
        return None


def init_app(app: Flask) -> None:
    app.wsgi_app = DecisionLane(app, app.wsgi_app)
