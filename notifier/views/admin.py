"""The admin UI: sign-in, policies, drafts with live preview, publishing, API keys, audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from policy_versions import store
from policy_versions.errors import NotifierError

from .. import audit, auth, db, hostwebhooks, jobs, notices, versions
from ..errors import bigint
from ..forms import ApiKeyForm, EmptyForm, PolicyForm, PublishForm, SignInForm, VersionForm
from ..security import limiter

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect after sign-in is a phishing tool."""
    if target and target.startswith("/") and not target.startswith("//"):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("admin.dashboard")


def _signin_failed(response) -> bool:
    return response.status_code != 302


@bp.route("/signin", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["SIGNIN_RATE_LIMIT"], methods=["POST"], deduct_when=_signin_failed
)
def signin():
    form = SignInForm()
    if form.validate_on_submit():
        with db.connection() as conn, conn.transaction():
            admin = auth.authenticate(conn, form.email.data, form.password.data)
            if admin is not None:
                g.admin = admin
                audit.record(conn, "admin.signed_in", f"admin:{admin['email']}")
        if admin is not None:
            session.clear()  # a new session on sign-in: no fixation
            session["admin_id"] = admin["id"]
            return redirect(_safe_next(request.args.get("next")))
        form.password.errors.append("Wrong email or password.")
    status = 422 if request.method == "POST" else 200
    return render_template("admin/signin.html", form=form), status


@bp.post("/signout")
def signout():
    EmptyForm().validate_on_submit()
    session.clear()
    return redirect(url_for("admin.signin"))


@bp.get("/")
@auth.admin_required
def dashboard():
    now = datetime.now(UTC)
    with db.connection() as conn:
        rows = versions.policy_overview(conn, now)
    return render_template("admin/dashboard.html", rows=rows, now=now)


@bp.route("/policies/new", methods=["GET", "POST"])
@auth.admin_required
def policy_create():
    form = PolicyForm()
    if form.validate_on_submit():
        try:
            with db.connection() as conn, conn.transaction():
                policy = store.create_policy(conn, form.slug.data, form.title.data)
                audit.record(conn, "policy.created", f"policy:{policy.slug}", title=policy.title)
        except NotifierError as exc:
            for name, message in exc.fields.items():
                getattr(form, name).errors.append(message)
            if not exc.fields:
                form.form_errors.append(exc.message)
        else:
            flash(f"Policy “{policy.title}” created. Write its first version.")
            return redirect(url_for("admin.version_new", policy_id=policy.id))
    status = 422 if request.method == "POST" else 200
    return render_template("admin/policy_create.html", form=form), status


@bp.get("/policies/<int:policy_id>")
@auth.admin_required
def policy_show(policy_id: int):
    now = datetime.now(UTC)
    with db.connection() as conn:
        policy = store.get_policy_by_id(conn, policy_id)
        all_versions = store.list_versions(conn, policy_id, published_only=False)
        current = store.in_force(conn, policy_id, now)
    return render_template(
        "admin/policy_show.html",
        policy=policy,
        versions=all_versions,
        in_force_id=current.id if current else None,
        now=now,
        form=EmptyForm(),
    )


@bp.route("/policies/<int:policy_id>/versions/new", methods=["GET", "POST"])
@auth.admin_required
def version_new(policy_id: int):
    """Start a draft, pre-filled with the latest published text."""
    with db.connection() as conn:
        policy = store.get_policy_by_id(conn, policy_id)
        draft = store.find_draft(conn, policy_id)
        if draft is not None:
            flash(f"Version {draft.seq} is already a draft: continue editing it.")
            return redirect(url_for("admin.version_edit", policy_id=policy_id, version_id=draft.id))
        # The newest published text, upcoming or in force: the next version builds on it.
        base = store.latest_published(conn, policy_id)
    form = VersionForm()
    status = 422 if request.method == "POST" else 200
    if request.method == "GET" and base is not None:
        form.body_md.data = base.body_md
    if form.validate_on_submit():
        try:
            with db.connection() as conn, conn.transaction():
                version = versions.create_draft(conn, policy, form.body_md.data, g.admin["id"])
        except NotifierError as exc:
            form.body_md.errors.append(exc.message)
            status = exc.status
        else:
            flash(f"Draft version {version.seq} saved.")
            return redirect(
                url_for("admin.version_show", policy_id=policy_id, version_id=version.id)
            )
    return render_template(
        "admin/version_edit.html", form=form, policy=policy, version=None, base=base
    ), status


def _version_of(conn, policy_id: int, version_id: int):
    version = store.get_version_by_id(conn, version_id)
    if version.policy_id != policy_id:
        raise store.NotFound("This version does not belong to this policy.")
    return version


@bp.route("/policies/<int:policy_id>/versions/<int:version_id>/edit", methods=["GET", "POST"])
@auth.admin_required
def version_edit(policy_id: int, version_id: int):
    with db.connection() as conn:
        policy = store.get_policy_by_id(conn, policy_id)
        version = _version_of(conn, policy_id, version_id)
    if version.is_published:
        flash(f"Version {version.seq} is published and can no longer change.")
        return redirect(url_for("admin.version_show", policy_id=policy_id, version_id=version_id))
    form = VersionForm()
    status = 422 if request.method == "POST" else 200
    if request.method == "GET":
        form.body_md.data = version.body_md
    if form.validate_on_submit():
        try:
            with db.connection() as conn, conn.transaction():
                version = versions.update_draft(conn, policy, version, form.body_md.data)
        except NotifierError as exc:
            form.body_md.errors.append(exc.message)
            status = exc.status
        else:
            flash(f"Draft version {version.seq} saved.")
            return redirect(
                url_for("admin.version_show", policy_id=policy_id, version_id=version_id)
            )
    return render_template(
        "admin/version_edit.html", form=form, policy=policy, version=version, base=None
    ), status


@bp.post("/preview")
@auth.admin_required
def preview():
    """Rendered, sanitised HTML for the editor's live preview (CSRF checked from the header)."""
    body = (request.get_json(silent=True) or {}).get("body_md")
    if not isinstance(body, str):
        return jsonify(
            {
                "error": "validation_error",
                "message": "body_md (a string) is required",
                "fields": {"body_md": "required"},
            }
        ), 422
    limit = current_app.config["MAX_MARKDOWN_BYTES"]
    if len(body.encode()) > limit:
        return jsonify(
            {
                "error": "payload_too_large",
                "message": f"The text is over the limit of {limit:,} bytes.",
                "fields": {},
            }
        ), 413
    from policy_versions.markdown import render

    return jsonify({"html": render(body)})


@bp.route("/policies/<int:policy_id>/versions/<int:version_id>", methods=["GET"])
@auth.admin_required
def version_show(policy_id: int, version_id: int):
    now = datetime.now(UTC)
    with db.connection() as conn:
        policy = store.get_policy_by_id(conn, policy_id)
        version = _version_of(conn, policy_id, version_id)
        context = versions.review_context(conn, policy, version, now)
        context.update(_notice_context(conn, version))
    form = PublishForm()
    if not version.is_published:
        versions.fill_publish_defaults(form, version, context)
    return render_template(
        "admin/version_show.html",
        policy=policy,
        version=version,
        form=form,
        action_form=EmptyForm(),
        now=now,
        **context,
    )


def _notice_context(conn, version) -> dict:
    """The recipient count before publishing; the notices and grace period once published."""
    return {
        "notice_audience": notices.count_audience(conn),
        "version_notices": notices.notices_for_version(conn, version.id),
        "notice_min_days": current_app.config["NOTICE_MIN_DAYS"],
        "grace_days": versions.grace_days(conn, version.id) if version.is_published else 0,
    }


@bp.post("/policies/<int:policy_id>/versions/<int:version_id>/publish")
@auth.admin_required
def version_publish(policy_id: int, version_id: int):
    now = datetime.now(UTC)
    form = PublishForm()
    with db.connection() as conn:
        policy = store.get_policy_by_id(conn, policy_id)
        version = _version_of(conn, policy_id, version_id)
    if version.is_published:
        raise store.Conflict(f"Version {version.seq} is already published.")
    if form.validate_on_submit():
        try:
            with db.connection() as conn, conn.transaction():
                published = versions.publish(
                    conn,
                    policy,
                    version,
                    effective_at=form.effective_datetime(),
                    summary=form.summary.data,
                    verdict=form.verdict.data,
                    override_reason=form.override_reason.data,
                    acceptance_mode=form.acceptance_mode.data,
                    grace_days=form.grace_days.data,
                    published_by=g.admin["id"],
                    now=now,
                )
                notice = notices.create_for_publish(  # rolls the publish back if refused
                    conn,
                    published,
                    notices.NoticeOptions(
                        email=form.email_choice(),
                        scheduled_at=form.notice_datetime(),
                        window_override_reason=form.window_override_reason.data,
                    ),
                    created_by=g.admin["id"],
                    now=now,
                )
                events = hostwebhooks.create_version_events(conn, policy, published)
        except NotifierError as exc:
            for name, message in exc.fields.items():
                field = getattr(form, name, None)
                (field.errors if field is not None else form.form_errors).append(message)
            # The whole sentence (what is wrong and what to do) heads the form; the fields
            # repeat their part of it.
            form.form_errors.insert(0, exc.message)
        else:
            version = published
            jobs.enqueue_notice(notice)  # after COMMIT, so the worker sees the rows
            hostwebhooks.enqueue(events)
            flash(f"Version {version.seq} published, effective {version.effective_at:%Y-%m-%d}.")
            return redirect(
                url_for("admin.version_show", policy_id=policy_id, version_id=version.id)
            )
    with db.connection() as conn:
        context = versions.review_context(conn, policy, version, now)
        context.update(_notice_context(conn, version))
    return render_template(
        "admin/version_show.html",
        policy=policy,
        version=version,
        form=form,
        action_form=EmptyForm(),
        now=now,
        **context,
    ), 422


@bp.post("/policies/<int:policy_id>/versions/<int:version_id>/discard")
@auth.admin_required
def version_discard(policy_id: int, version_id: int):
    form = EmptyForm()
    if not form.validate_on_submit():
        raise store.ValidationError("The form expired; reload the page and try again.")
    with db.connection() as conn, conn.transaction():
        version = _version_of(conn, policy_id, version_id)
        store.delete_draft(conn, version.id)
        audit.record(conn, "version.discarded", f"version:{version.id}", seq=version.seq)
    flash(f"Draft version {version.seq} discarded.")
    return redirect(url_for("admin.policy_show", policy_id=policy_id))


@bp.route("/api-keys", methods=["GET", "POST"])
@auth.admin_required
def api_keys():
    form = ApiKeyForm()
    new_key = None
    if form.validate_on_submit():
        try:
            with db.connection() as conn, conn.transaction():
                row, new_key = auth.create_api_key(conn, form.name.data, g.admin["id"])
                audit.record(conn, "api_key.created", f"api-key:{row['prefix']}", name=row["name"])
        except NotifierError as exc:
            form.name.errors.append(exc.message)
        else:
            form.name.data = ""
    with db.connection() as conn:
        keys = auth.list_api_keys(conn)
    status = 422 if request.method == "POST" and form.errors else 200
    return render_template(
        "admin/api_keys.html", form=form, keys=keys, new_key=new_key, action_form=EmptyForm()
    ), status


@bp.post("/api-keys/<int:key_id>/revoke")
@auth.admin_required
def api_key_revoke(key_id: int):
    if not EmptyForm().validate_on_submit():
        raise store.ValidationError("The form expired; reload the page and try again.")
    with db.connection() as conn, conn.transaction():
        row = auth.revoke_api_key(conn, key_id)
        if row is None:
            raise store.NotFound("No active API key with this id.")
        audit.record(conn, "api_key.revoked", f"api-key:{row['prefix']}", name=row["name"])
    flash(f"API key “{row['name']}” revoked.")
    return redirect(url_for("admin.api_keys"))


@bp.get("/audit")
@auth.admin_required
def audit_list():
    before = request.args.get("before", type=bigint)
    with db.connection() as conn:
        entries = audit.list_entries(conn, before=before, limit=100)
    return render_template("admin/audit.html", entries=entries)
