"""Admin pages for the host integration: CSV user import and per-key host settings."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from .. import audit, auth, db, hostkeys, hostwebhooks, imports
from ..auth import admin_required
from ..errors import ValidationError

bp = Blueprint("hostadmin", __name__, url_prefix="/admin/host")


@bp.get("/import")
@admin_required
def import_show():
    return render_template("reports/import.html", report=None)


@bp.post("/import")
@admin_required
def import_create():
    """Stream the uploaded CSV through COPY; the report says exactly what was written."""
    request.max_content_length = None  # a CSV of any size; werkzeug spools it to disk
    upload = request.files.get("file")
    all_or_nothing = request.form.get("partial") != "1"
    if upload is None or not upload.filename:
        flash("Choose a CSV file to import.")
        return render_template("reports/import.html", report=None), 422
    report = imports.Report()
    with db.connection() as conn:
        try:
            imports.load(
                conn,
                imports.csv_rows(upload.stream),
                scope=None,
                all_or_nothing=all_or_nothing,
                report=report,
            )
        except imports.ImportAborted as exc:
            report.aborted = exc.message
            report.written = False
        if report.written:
            with conn.transaction():
                audit.record(
                    conn,
                    "users.imported",
                    None,
                    file=upload.filename,
                    created=report.created,
                    updated=report.updated,
                    errors=report.error_count,
                )
    status = 200 if report.written else 422
    return render_template("reports/import.html", report=report, filename=upload.filename), status


@bp.get("/keys")
@admin_required
def key_list():
    with db.connection() as conn:
        keys = auth.list_api_keys(conn)
    return render_template("reports/key_list.html", keys=keys)


@bp.route("/keys/<int:key_id>", methods=["GET", "POST"])
@admin_required
def key_show(key_id: int):
    errors = {}
    with db.connection() as conn:
        if request.method == "POST":
            try:
                with conn.transaction():
                    hostkeys.update_settings(
                        conn,
                        key_id,
                        scoped=request.form.get("scoped") == "1",
                        origins=hostkeys.parse_origins(request.form.get("allowed_origins", "")),
                        webhook_url=(request.form.get("webhook_url") or "").strip() or None,
                        allow_private=current_app.config["HOST_WEBHOOK_ALLOW_PRIVATE"],
                    )
                    audit.record(conn, "api_key.host_settings", f"api-key:#{key_id}")
                flash("Settings saved.")
                return redirect(url_for("hostadmin.key_show", key_id=key_id))
            except ValidationError as exc:
                errors = exc.fields
                flash(exc.message)
        with conn.transaction():
            settings = hostkeys.settings(conn, key_id)
        events = hostwebhooks.list_events(conn, key_id)
    return render_template(
        "reports/key_show.html", s=settings, events=events, errors=errors
    ), 422 if errors else 200
