"""The in-app prompt: /widget.js, its token-authenticated JSON endpoints (CORS), the demo host."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from flask import Blueprint, current_app, g, jsonify, render_template, request, send_from_directory

from .. import acceptances, audience, db, hostkeys, hostwebhooks
from ..auth import admin_required
from ..errors import Forbidden, ValidationError
from ..security import csrf
from .api import json_body

bp = Blueprint("widget", __name__)
csrf.exempt(bp)  # signed user tokens, never cookies

DEMO_KEY_NAME = "Demo host page"


def _same_origin(origin: str) -> bool:
    return origin == request.host_url.rstrip("/")


def _check_origin(key: dict) -> None:
    """Browsers send Origin on cross-origin calls: it must be one the admin listed for the key."""
    origin = request.headers.get("Origin")
    if origin is None or _same_origin(origin):
        return
    if origin not in (key["allowed_origins"] or []):
        raise Forbidden(f"The origin {origin} is not allowed for this key.")
    g.cors_origin = origin


@bp.after_request
def cors_headers(response):
    origin = g.get("cors_origin")
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    return response


@bp.get("/widget.js")
def widget_js():
    response = send_from_directory(current_app.static_folder, "widget.js", max_age=300)
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


@bp.get("/widget.css")
def widget_css():
    response = send_from_directory(current_app.static_folder, "widget.css", max_age=300)
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


@bp.route("/widget/v1/<path:anything>", methods=["OPTIONS"])
def preflight(anything: str):
    """Preflights carry no token, so any origin listed for an active key passes here."""
    origin = request.headers.get("Origin", "")
    with db.connection() as conn:
        allowed = hostkeys.origin_allowed_anywhere(conn, origin)
    response = current_app.response_class(status=204 if allowed else 403)
    if allowed:
        g.cors_origin = origin
        response.headers["Access-Control-Allow-Methods"] = "POST"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, X-Widget-Token"
        response.headers["Access-Control-Max-Age"] = "600"
    return response


def _user(conn) -> tuple[dict, dict]:
    key, external_id = hostkeys.read_widget_token(conn, request.headers.get("X-Widget-Token", ""))
    _check_origin(key)
    g.api_key = key
    return key, audience.get_user(conn, external_id, audience.scope_of(key))


@bp.route("/widget/v1/activity", methods=["POST"], provide_automatic_options=False)
def activity():
    """The widget's first call on each page: implied acceptances due, then what to show."""
    now = datetime.now(UTC)
    with db.connection() as conn:
        with conn.transaction():
            key, user = _user(conn)
            result = acceptances.record_activity(conn, user, now)
        body = acceptances.pending(conn, user["external_id"], audience.scope_of(key), now)
    hostwebhooks.enqueue(result["events"])
    body["implied"] = [acceptances.acceptance_json(r) for r in result["implied"]]
    return jsonify(body)


@bp.route("/widget/v1/decisions", methods=["POST"], provide_automatic_options=False)
def decision():
    data = json_body()
    choice = data.get("decision")
    if choice not in ("accepted", "declined"):
        raise ValidationError(
            "decision must be 'accepted' or 'declined'.",
            fields={"decision": "accepted or declined"},
        )
    prompt = data.get("prompt_text")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValidationError(
            "prompt_text is required.", fields={"prompt_text": "the wording shown"}
        )
    now = datetime.now(UTC)
    with db.connection() as conn, conn.transaction():
        key, user = _user(conn)
        version = acceptances.find_version(conn, data)
        row, created, events = acceptances.record(
            conn,
            user,
            version,
            decision=choice,
            method="click",
            now=now,
            ip=acceptances.normalise_ip(request.remote_addr),
            user_agent=request.headers.get("User-Agent", ""),
            locale=data.get("locale") if isinstance(data.get("locale"), str) else None,
            prompt_text=prompt,
            api_key_id=key["id"],
        )
    hostwebhooks.enqueue(events)
    return jsonify(acceptances.acceptance_json(row, version)), 201 if created else 200


@bp.get("/demo/host")
@admin_required
def demo_host():
    """A pretend host application embedding the widget for one demo user (admins only)."""
    external_id = request.args.get("user") or ""
    with db.connection() as conn, conn.transaction():
        users = conn.execute(
            "SELECT external_id, name FROM users WHERE erased_at IS NULL ORDER BY id LIMIT 20"
        ).fetchall()
        if not external_id and users:
            external_id = users[0]["external_id"]
        key = conn.execute(
            "SELECT id FROM api_keys WHERE name = %(n)s AND revoked_at IS NULL ORDER BY id LIMIT 1",
            {"n": DEMO_KEY_NAME},
        ).fetchone()
        if key is None:
            from .. import auth

            key, _ = auth.create_api_key(conn, DEMO_KEY_NAME, g.admin["id"])
        settings = hostkeys.settings(conn, key["id"])
    token = None
    if external_id:
        token = hostkeys.widget_token(
            settings["prefix"], settings["widget_secret"], external_id, int(time.time()) + 3600
        )
    return render_template("demo/host.html", token=token, external_id=external_id, users=users)
