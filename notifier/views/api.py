"""The JSON API for host applications and CI: API-key auth, JSON in and out."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, current_app, g, jsonify, request

from policy_versions import store
from policy_versions.errors import Conflict, NotFound, PayloadTooLarge, ValidationError

from .. import auth, db, hostwebhooks, jobs, notices, versions
from ..security import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # authenticated by bearer key, never by cookie


@bp.before_request
def require_api_key() -> None:
    with db.connection() as conn:
        g.api_key = auth.api_key_from_request(conn)


def json_body() -> dict:
    """The request's JSON object, or a 4xx that says what is wrong with it."""
    limit = current_app.config["MAX_MARKDOWN_BYTES"] + 64 * 1024
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"The request body is larger than the limit of {limit:,} bytes.")
    if not request.is_json:
        raise ValidationError("Send a JSON object with 'Content-Type: application/json'.")
    raw = request.get_data(cache=True)
    if len(raw) > limit:
        raise PayloadTooLarge(f"The request body is larger than the limit of {limit:,} bytes.")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError("The request body is not valid UTF-8.") from exc
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationError("The request body must be a JSON object.")
    return data


def parse_datetime(value, field: str) -> datetime:
    """ISO 8601 with an explicit offset; a naive time is ambiguous and refused."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(
            f"{field} is required.", fields={field: "required, ISO 8601 with a time zone"}
        )
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationError(
            f"{field} is not an ISO 8601 date-time: {value!r}.",
            fields={field: "must be ISO 8601 with a time zone"},
        ) from exc
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValidationError(
            f"{field} has no time zone; add an offset such as +00:00.",
            fields={field: "must be ISO 8601 with a time zone"},
        )
    return parsed


def _string(data: dict, name: str, *, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string.", fields={name: "must be a string"})
    return value


def policy_json(conn, policy, now: datetime) -> dict:
    current = store.in_force(conn, policy.id, now)
    coming = store.upcoming(conn, policy.id, now)
    return {
        "slug": policy.slug,
        "title": policy.title,
        "in_force": versions.version_json(policy, current, include_body=False) if current else None,
        "upcoming": versions.version_json(policy, coming, include_body=False) if coming else None,
    }


@bp.get("/policies")
def policy_list():
    now = datetime.now(UTC)
    with db.connection() as conn:
        items = [policy_json(conn, p, now) for p in store.list_policies(conn)]
    return jsonify({"policies": items})


@bp.get("/policies/<slug>")
def policy_show(slug: str):
    now = datetime.now(UTC)
    with db.connection() as conn:
        policy = store.get_policy(conn, slug)
        return jsonify(policy_json(conn, policy, now))


@bp.get("/policies/<slug>/versions/<int:seq>")
def version_show(slug: str, seq: int):
    with db.connection() as conn:
        policy = store.get_policy(conn, slug)
        version = store.get_version(conn, policy.id, seq)
    return jsonify(versions.version_json(policy, version))


@bp.get("/policies/<slug>/versions/<int:seq>/changes")
def version_changes(slug: str, seq: int):
    """Structured changes of version `seq` against the previous version or `?against=<n>`."""
    with db.connection() as conn:
        policy = store.get_policy(conn, slug)
        version = store.get_version(conn, policy.id, seq)
        base = versions.comparison_base(conn, version, request.args.get("against"))
    if base is None:
        raise NotFound(f"Version {seq} is the first version: there is nothing to compare it with.")
    return jsonify(versions.changes_json(policy, base, version))


@bp.post("/policies/<slug>/versions")
def version_create(slug: str):
    data = json_body()
    body = _string(data, "body_markdown")
    with db.connection() as conn, conn.transaction():
        policy = store.get_policy(conn, slug)
        version = versions.create_draft(conn, policy, body, g.api_key["created_by"])
    return jsonify(versions.version_json(policy, version)), 201


@bp.put("/policies/<slug>/versions/<int:seq>")
def version_update(slug: str, seq: int):
    data = json_body()
    body = _string(data, "body_markdown")
    with db.connection() as conn, conn.transaction():
        policy = store.get_policy(conn, slug)
        version = store.get_version(conn, policy.id, seq)
        version = versions.update_draft(conn, policy, version, body)
    return jsonify(versions.version_json(policy, version))


@bp.post("/policies/<slug>/versions/<int:seq>/publish")
def version_publish(slug: str, seq: int):
    data = json_body()
    effective_at = parse_datetime(data.get("effective_at"), "effective_at")
    summary = _string(data, "summary")
    override_reason = _string(data, "override_reason", required=False)
    mode = _string(data, "acceptance_mode", required=False) or "explicit"
    grace_days = _grace_days(data)
    options = _notice_options(data)
    now = datetime.now(UTC)
    with db.connection() as conn, conn.transaction():
        policy = store.get_policy(conn, slug)
        version = store.get_version(conn, policy.id, seq)
        if version.is_published:
            raise Conflict(f"Version {seq} is already published.")
        verdict = _string(data, "verdict", required=False) or version.suggested_verdict
        if verdict is None:
            raise ValidationError(
                "verdict is required (cosmetic, minor or material).",
                fields={"verdict": "one of cosmetic, minor, material"},
            )
        version = versions.publish(
            conn,
            policy,
            version,
            effective_at=effective_at,
            summary=summary,
            verdict=verdict,
            override_reason=override_reason,
            acceptance_mode=mode,
            grace_days=grace_days,
            published_by=g.api_key["created_by"],
            now=now,
        )
        notice = notices.create_for_publish(
            conn, version, options, created_by=g.api_key["created_by"], now=now
        )
        audience = notices.count_audience(conn) if notice and notice["email"] else 0
        events = hostwebhooks.create_version_events(conn, policy, version)
    jobs.enqueue_notice(notice)  # after COMMIT, so the worker sees the rows
    hostwebhooks.enqueue(events)
    data = versions.version_json(policy, version)
    data["notice"] = (
        None
        if notice is None
        else {
            "id": notice["id"],
            "state": notice["state"],
            "email": notice["email"],
            "in_app": notice["in_app"],
            "scheduled_at": notice["scheduled_at"].isoformat(),
            "recipient_count": audience,
        }
    )
    return jsonify(data), 200


def _grace_days(data: dict) -> int:
    """`grace_days`: a JSON integer (0 when absent); its range and mode are checked at publish."""
    value = data.get("grace_days")
    if value is None:
        return 0
    # bool is an int in Python, and 7.0 or "7" would be guesses: only a JSON integer is taken.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            versions.GRACE_RANGE_MESSAGE, fields={"grace_days": versions.GRACE_RANGE_FIELD}
        )
    return value


def _notice_options(data: dict) -> notices.NoticeOptions:
    """`send_email` (true/false, default by verdict), `notice_at`, `window_override_reason`."""
    email = data.get("send_email")
    if email is not None and not isinstance(email, bool):
        raise ValidationError("send_email must be true or false.", fields={"send_email": "boolean"})
    notice_at = data.get("notice_at")
    return notices.NoticeOptions(
        email=email,
        scheduled_at=parse_datetime(notice_at, "notice_at") if notice_at is not None else None,
        window_override_reason=_string(data, "window_override_reason", required=False),
    )
