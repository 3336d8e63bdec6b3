"""Admin reports: acceptance per version and per user, evidence exports, GDPR actions."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)

from policy_versions import store

from .. import acceptances, audience, audit, db, evidence, gdpr, ledger, reporting
from ..auth import admin_required
from ..errors import bigint

bp = Blueprint("reports", __name__, url_prefix="/admin/reports")


def _csv_stream(header, rows):
    """CSV lines as they are produced: exports never hold the whole result in memory."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _download(body, filename: str, mimetype: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _version(conn, version_id: int):
    version = store.get_version_by_id(conn, version_id)
    if not version.is_published:
        abort(404)
    return version, store.get_policy_by_id(conn, version.policy_id)


@bp.get("/")
@admin_required
def index():
    with db.connection() as conn:
        rows = reporting.version_rows(conn)
    return render_template("reports/index.html", rows=rows)


@bp.get("/versions/<int:version_id>")
@admin_required
def version_show(version_id: int):
    q, segment = request.args.get("q"), request.args.get("segment")
    after = request.args.get("after", 0, type=bigint)
    with db.connection() as conn:
        version, policy = _version(conn, version_id)
        counts = reporting.version_counts(conn, version_id)
        superseded = reporting.superseded(conn, version_id)
        chart = reporting.chart(reporting.timeline(conn, version_id), counts["users"])
        segments = reporting.segments(conn, version_id)
        pending, next_after = reporting.pending_page(
            conn, version_id, q=q, segment=segment, after=after
        )
        grace = conn.execute(
            "SELECT grace FROM version_grace WHERE version_id = %(v)s", {"v": version_id}
        ).fetchone()
    return render_template(
        "reports/version_show.html",
        version=version,
        policy=policy,
        counts=counts,
        superseded=superseded,
        chart=chart,
        segments=segments,
        pending=pending,
        next_after=next_after,
        q=q or "",
        segment=segment or "",
        grace_days=(grace["grace"].days if grace else 0),
    )


@bp.post("/versions/<int:version_id>/grace")
@admin_required
def version_grace(version_id: int):
    days = request.form.get("grace_days", type=int)
    if days is None or not 0 <= days <= 365:
        flash("The grace period must be a whole number of days between 0 and 365.")
        return redirect(url_for("reports.version_show", version_id=version_id))
    with db.connection() as conn, conn.transaction():
        version, policy = _version(conn, version_id)
        conn.execute(
            """
            INSERT INTO version_grace (version_id, grace)
            VALUES (%(v)s, %(g)s)
            ON CONFLICT (version_id) DO UPDATE SET grace = EXCLUDED.grace
        """,
            {"v": version_id, "g": timedelta(days=days)},
        )
        audit.record(conn, "version.grace", f"policy:{policy.slug}/v{version.seq}", days=days)
    flash(f"Grace period set to {days} day(s): the prompt blocks that long after the date.")
    return redirect(url_for("reports.version_show", version_id=version_id))


@bp.get("/versions/<int:version_id>/pending.csv")
@admin_required
def version_pending_csv(version_id: int):
    q, segment = request.args.get("q"), request.args.get("segment")
    with db.connection() as conn:
        _version(conn, version_id)  # 404 before the download starts, not an error inside it

    def rows():
        with db.connection() as conn:
            for r in reporting.pending_all(conn, version_id, q=q, segment=segment):
                yield [
                    r["external_id"],
                    r["email"],
                    r["name"],
                    r["segment"],
                    r["locale"],
                    reporting.as_of(r["declined_at"]),
                ]

    header = ["external_id", "email", "name", "segment", "locale", "declined_at"]
    body = stream_with_context(_csv_stream(header, rows()))
    return _download(body, f"pending-version-{version_id}.csv", "text/csv")


@bp.get("/versions/<int:version_id>/evidence.csv")
@admin_required
def version_evidence_csv(version_id: int):
    with db.connection() as conn:
        _version(conn, version_id)  # 404 before the download starts, not an error inside it

    def rows():
        with db.connection() as conn:
            for r in evidence.rows_for(conn, version_id=version_id):
                data = evidence.row_json(r)
                yield [data[c] for c in evidence.EXPORT_COLUMNS]

    body = stream_with_context(_csv_stream(evidence.EXPORT_COLUMNS, rows()))
    return _download(body, f"evidence-version-{version_id}.csv", "text/csv")


@bp.get("/users")
@admin_required
def user_list():
    q = request.args.get("q")
    after = request.args.get("after", 0, type=bigint)
    with db.connection() as conn:
        users = reporting.search_users(conn, q, after)
    return render_template("reports/user_list.html", users=users, q=q or "")


def _user_context(conn, user_id: int) -> dict:
    user = audience.get_user_by_id(conn, user_id)
    return {
        "user": user,
        "rows": list(evidence.rows_for(conn, user_id=user_id)),
        "deliveries": ledger.user_deliveries(conn, user_id),
        "subject_key": audience.subject_key(user["external_id"])
        if user["erased_at"] is None
        else None,
    }


@bp.get("/users/<int:user_id>")
@admin_required
def user_show(user_id: int):
    with db.connection() as conn:
        context = _user_context(conn, user_id)
        context["pending"] = (
            acceptances.pending(conn, context["user"]["external_id"], None, datetime.now(UTC))[
                "pending"
            ]
            if context["user"]["erased_at"] is None
            else []
        )
    return render_template("reports/user_show.html", **context)


@bp.get("/users/<int:user_id>/evidence")
@admin_required
def user_evidence(user_id: int):
    """A printable evidence page: every decision with the exact text fingerprint and chain."""
    with db.connection() as conn:
        context = _user_context(conn, user_id)
    return render_template("reports/user_evidence.html", **context)


@bp.get("/users/<int:user_id>/evidence.json")
@admin_required
def user_evidence_json(user_id: int):
    with db.connection() as conn:
        context = _user_context(conn, user_id)
    data = {
        "user": {"id": user_id, "external_id": context["user"]["external_id"]},
        "subject_key": context["subject_key"],
        "acceptances": [evidence.row_json(r) for r in context["rows"]],
    }
    return _download(
        json.dumps(data, indent=2), f"evidence-user-{user_id}.json", "application/json"
    )


@bp.get("/users/<int:user_id>/export.json")
@admin_required
def user_export(user_id: int):
    with db.connection() as conn:
        user = audience.get_user_by_id(conn, user_id)
        data = gdpr.export(conn, user)
    return _download(
        json.dumps(data, indent=2, default=str), f"user-{user_id}-export.json", "application/json"
    )


@bp.post("/users/<int:user_id>/erase")
@admin_required
def user_erase(user_id: int):
    if request.form.get("confirm") != "erase":
        flash("Type 'erase' to confirm: erasure cannot be undone.")
        return redirect(url_for("reports.user_show", user_id=user_id))
    with db.connection() as conn, conn.transaction():
        user = audience.get_user_by_id(conn, user_id)
        if user["erased_at"] is None:
            gdpr.erase(conn, user)
    flash("Personal data erased; the acceptance evidence is kept under a pseudonym.")
    return redirect(url_for("reports.user_show", user_id=user_id))
