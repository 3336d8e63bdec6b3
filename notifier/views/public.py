"""Public pages anyone can read: policies in force, the archive, permalinks, redlines, feeds."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, current_app, jsonify, make_response, render_template, request

from policy_versions import diff, store
from policy_versions.errors import ValidationError

from .. import db, queues, versions

bp = Blueprint("public", __name__)

# Permalinks never change once published, so caches may keep them for a long time.
IMMUTABLE = "public, max-age=31536000, immutable"
# Pages that move when a version comes into force are revalidated often.
SHORT = "public, max-age=60, must-revalidate"


def _cached(body: str, etag: str, cache_control: str, mimetype: str = "text/html"):
    response = make_response(body)
    response.mimetype = mimetype
    response.set_etag(etag)
    response.headers["Cache-Control"] = cache_control
    return response.make_conditional(request)


@bp.get("/")
def index():
    now = datetime.now(UTC)
    with db.connection() as conn:
        rows = [r for r in versions.policy_overview(conn, now) if r["in_force"] or r["upcoming"]]
    return render_template("public/index.html", rows=rows)


@bp.get("/policies/<slug>")
def policy_show(slug: str):
    now = datetime.now(UTC)
    with db.connection() as conn:
        policy = store.get_policy(conn, slug)
        current = store.in_force(conn, policy.id, now)
        coming = store.upcoming(conn, policy.id, now)
    if current is None and coming is None:
        raise store.NotFound(f"'{policy.title}' has no published version yet.")
    body = render_template(
        "public/policy_show.html", policy=policy, version=current, upcoming=coming
    )
    etag = f"{policy.id}-{current.id if current else 0}-{coming.id if coming else 0}"
    return _cached(body, etag, SHORT)


@bp.get("/policies/<slug>/versions")
def version_list(slug: str):
    now = datetime.now(UTC)
    with db.connection() as conn:
        policy = store.get_policy(conn, slug)
        published = store.list_versions(conn, policy.id)
        current = store.in_force(conn, policy.id, now)
    in_force_id = current.id if current else None
    body = render_template(
        "public/version_list.html",
        policy=policy,
        versions=published,
        in_force_id=in_force_id,
        now=now,
    )
    etag = f"list-{policy.id}-{published[0].id if published else 0}-{in_force_id}"
    return _cached(body, etag, SHORT)


@bp.get("/policies/<slug>/versions/<int:seq>")
def version_show(slug: str, seq: int):
    now = datetime.now(UTC)
    with db.connection() as conn:
        policy = store.get_policy(conn, slug)
        version = store.get_published(conn, policy.id, seq)
        current = store.in_force(conn, policy.id, now)
    state = version.state(now, current.id if current else None)
    body = render_template(
        "public/version_show.html", policy=policy, version=version, state=state, in_force=current
    )
    # The state badge (upcoming / in force / superseded) moves with time; the text never does.
    return _cached(body, f"{version.content_sha256[:16]}-{version.id}-{state}", SHORT)


@bp.get("/policies/<slug>/versions/<int:seq>/changes")
def version_changes(slug: str, seq: int):
    """The redline of version `seq` against the previous one, or `?against=<n>`."""
    view = request.args.get("view", "inline")
    if view not in ("inline", "side-by-side"):
        raise ValidationError(
            "view must be 'inline' or 'side-by-side'.", fields={"view": "inline or side-by-side"}
        )
    with db.connection() as conn:
        policy = store.get_policy(conn, slug)
        version = store.get_published(conn, policy.id, seq)
        previous = versions.comparison_base(conn, version, request.args.get("against"))
        published = store.list_versions(conn, policy.id)
    rendered = None
    if previous is not None:
        result = diff.compute(previous.body_md, version.body_md)
        if view == "side-by-side":
            rendered = diff.side_by_side_html(result)
        else:
            rendered = diff.redline_html(result)
    body = render_template(
        "public/version_changes.html",
        policy=policy,
        version=version,
        previous=previous,
        redline=rendered,
        view=view,
        published=published,
    )
    etag = f"changes-{version.id}-{previous.id if previous else 0}-{view}"
    return _cached(body, etag, IMMUTABLE)


@bp.get("/policies/<slug>/feed.atom")
def feed(slug: str):
    with db.connection() as conn:
        policy = store.get_policy(conn, slug)
        published = store.list_versions(conn, policy.id)[:50]
    body = render_template("public/feed.atom", policy=policy, versions=published)
    etag = f"feed-{policy.id}-{published[0].id if published else 0}"
    return _cached(body, etag, SHORT, mimetype="application/atom+xml")


@bp.get("/healthz")
def healthz():
    """200 when PostgreSQL and Redis both answer, else 503 naming what is down."""
    checks: dict[str, str] = {}
    try:
        with current_app.extensions["db"].pool().connection(timeout=2) as conn:
            conn.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "down": report it, never raise
        checks["database"] = f"down: {type(exc).__name__}"
    try:
        queues.redis_connection().ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"down: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    response = jsonify({"status": "ok" if healthy else "unavailable", **checks})
    response.status_code = 200 if healthy else 503
    response.headers["Cache-Control"] = "no-store"
    return response
