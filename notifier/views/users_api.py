"""Host-facing JSON API for the audience and acceptance: users, pending prompts, decisions."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import psycopg
from flask import Blueprint, current_app, g, jsonify, request

from .. import (
    acceptances,
    audience,
    audit,
    auth,
    db,
    decisions,
    fastpath,
    gdpr,
    hostkeys,
    hostwebhooks,
    imports,
    pendingcache,
)
from ..errors import NotFound, NotifierError, PayloadTooLarge, ValidationError
from ..security import csrf
from .api import json_body

bp = Blueprint("users_api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # bearer-key auth, never cookies

MAX_BULK_USERS = 10_000
MAX_BULK_BYTES = 10 * 1024 * 1024
FAST_PATH = (
    "users_api.noop",
    "users_api.pending",
    "users_api.acceptance_create",
    "users_api.decline_create",
)


@bp.url_value_preprocessor
def no_impossible_user(endpoint: str | None, values: dict | None) -> None:
    """An id no user can have (a NUL, which PostgreSQL refuses in text, other control characters,
    over 200 characters) is unknown without asking the database; PUT's validation says why."""
    external_id = (values or {}).get("external_id")
    if external_id is None or request.method == "PUT":
        return
    try:
        audience.check_external_id(external_id)
    except ValidationError:
        raise NotFound(f"No user with the external id {external_id!r}.") from None


@bp.before_request
def require_api_key() -> None:
    if request.endpoint in FAST_PATH:
        return  # no key needed / the key is checked inside the endpoint's first query
    with db.connection() as conn:
        g.api_key = hostkeys.authenticate(conn)


def scope() -> int | None:
    return audience.scope_of(g.api_key)


@bp.get("/noop")
def noop():
    """No auth, no database: the baseline for `make bench-pending`.

    `?db=1` adds one `SELECT 1` round trip on the pending endpoint's pool, so the benchmark can
    tell the database's share of a request from the rest. `?lane=1` is answered before Flask,
    by the lane that answers pending (notifier/decisionlane.py): the same answer, and the
    baseline for what that lane costs.
    """
    if request.args.get("lane", "1") != "1":
        raise ValidationError("lane must be 1.", fields={"lane": "1"})
    db_param = request.args.get("db", "0")
    if db_param not in ("0", "1"):
        raise ValidationError("db must be 0 or 1.", fields={"db": "0 or 1"})
    if db_param == "1":
        with fastpath.connection() as conn:
            conn.execute("SELECT 1").fetchone()
    return jsonify({"ok": True})


@bp.get("/users/<external_id>/pending")
def pending(external_id: str):
    sha = auth._digest(hostkeys.bearer_key())
    now = datetime.now(UTC)
    for attempt in (1, 2):
        try:
            body = pendingcache.answer(sha, external_id, now, acceptances.url_root())
            break
        except psycopg.OperationalError:
            if attempt == 2:
                raise  # the hot-path pool skips per-checkout checks: retry once on a dead conn
    return current_app.response_class(
        body, mimetype="application/json", headers={"Cache-Control": "no-store"}
    )


@bp.get("/users/<external_id>")
def user_show(external_id: str):
    with db.connection() as conn:
        return jsonify(audience.user_json(audience.get_user(conn, external_id, scope())))


@bp.put("/users/<external_id>")
def user_put(external_id: str):
    data = json_body()
    user = audience.parse_user({k: v for k, v in data.items() if k != "external_id"}, external_id)
    with db.connection() as conn, conn.transaction():
        row, created = audience.upsert_user(conn, user, scope())
    return jsonify(audience.user_json(row)), 201 if created else 200


@bp.delete("/users/<external_id>")
def user_delete(external_id: str):
    with db.connection() as conn, conn.transaction():
        user = audience.get_user(conn, external_id, scope())
        result = gdpr.erase(conn, user)
    return jsonify(result)


@bp.get("/users/<external_id>/export")
def user_export(external_id: str):
    with db.connection() as conn:
        user = audience.get_user(conn, external_id, scope())
        data = gdpr.export(conn, user)
    return current_app.response_class(
        json.dumps(data, default=str, indent=2), mimetype="application/json"
    )


@bp.post("/users/bulk")
def users_bulk():
    """Up to 10,000 users; all-or-nothing unless {"partial": true}. Errors name the row."""
    if (request.content_length or 0) > MAX_BULK_BYTES:
        raise PayloadTooLarge(f"The body is larger than {MAX_BULK_BYTES:,} bytes.")
    if not request.is_json:
        raise ValidationError("Send a JSON object with 'Content-Type: application/json'.")
    data = request.get_json(silent=True)
    if not isinstance(data, dict) or not isinstance(data.get("users"), list):
        raise ValidationError(
            'Send {"users": [...]} with up to 10,000 users.', fields={"users": "a list"}
        )
    items = data["users"]
    if len(items) > MAX_BULK_USERS:
        raise PayloadTooLarge(
            f"{len(items):,} users in one call; the limit is {MAX_BULK_USERS:,}. Split the list.",
            fields={"users": f"at most {MAX_BULK_USERS:,} items"},
        )
    partial = data.get("partial") is True
    with db.connection() as conn:
        report = imports.load(
            conn, imports.json_rows(items), scope=scope(), all_or_nothing=not partial
        )
        if report.written:
            with conn.transaction():
                audit.record(
                    conn, "users.bulk", None, created=report.created, updated=report.updated
                )
    status = 200 if report.written else 422
    body = report.as_json()
    if not report.written:
        body |= {"error": "validation_failed", "message": report.summary, "fields": {}}
    return jsonify(body), status


def _decide(external_id: str, decision: str):
    sha = auth._digest(hostkeys.bearer_key())
    try:
        asked = decisions.parse_request(json_body(), decision)
    except NotifierError:
        with db.connection() as conn:
            hostkeys.authenticate(conn)  # a bad key answers 401 before a bad body's 4xx
        raise
    row, version, created, events = decisions.decide(sha, external_id, asked, datetime.now(UTC))
    hostwebhooks.enqueue(events)
    return jsonify(acceptances.acceptance_json(row, version)), 201 if created else 200


@bp.post("/users/<external_id>/acceptances")
def acceptance_create(external_id: str):
    return _decide(external_id, "accepted")


@bp.post("/users/<external_id>/declines")
def decline_create(external_id: str):
    return _decide(external_id, "declined")


@bp.get("/users/<external_id>/acceptances")
def acceptance_list(external_id: str):
    with db.connection() as conn:
        user = audience.get_user(conn, external_id, scope())
        rows = acceptances.list_for_user(conn, user["id"])
    return jsonify(
        {"external_id": external_id, "acceptances": [acceptances.acceptance_json(r) for r in rows]}
    )


@bp.post("/users/<external_id>/activity")
def activity(external_id: str):
    now = datetime.now(UTC)
    with db.connection() as conn, conn.transaction():
        user = audience.get_user(conn, external_id, scope())
        result = acceptances.record_activity(conn, user, now)
    hostwebhooks.enqueue(result["events"])
    return jsonify(
        {
            "implied": [acceptances.acceptance_json(r) for r in result["implied"]],
            "not_implied": result["refused"],
        }
    )
