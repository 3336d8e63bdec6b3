"""Admin pages for notices (progress, controls, recipients, outbox) and the notice API."""

from __future__ import annotations

import time

from flask import (
    Blueprint,
    Response,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from policy_versions.errors import Conflict, NotFound, ValidationError

from .. import audit, auth, db, jobs, ledger, mailer, notices, reminders
from ..errors import bigint
from ..forms import EmptyForm
from ..security import csrf

bp = Blueprint("notices", __name__, url_prefix="/admin/notices")
api_bp = Blueprint("notices_api", __name__, url_prefix="/api/v1")
csrf.exempt(api_bp)  # bearer key, never cookies

STATES = ("pending", "sending", "sent", "delivered", "deferred", "bounced", "dropped", "failed",
          "cancelled")  # fmt: skip


def _check_form() -> None:
    if not EmptyForm().validate_on_submit():
        raise ValidationError("The form expired; reload the page and try again.")


@bp.get("/")
@auth.admin_required
def notice_list():
    with db.connection() as conn:
        rows = [{**n, "counts": notices.counts(conn, n["id"])} for n in notices.list_notices(conn)]
    jobs.ensure_sweep()
    return render_template("notices/notice_list.html", rows=rows)


@bp.get("/<int:notice_id>")
@auth.admin_required
def notice_show(notice_id: int):
    with db.connection() as conn:
        notice = notices.get_notice(conn, notice_id)
        totals = notices.counts(conn, notice_id)
        attempts = conn.execute(
            """
            SELECT *
              FROM send_attempts
             WHERE notice_id = %(id)s AND outcome IS DISTINCT FROM 'sent'
          ORDER BY id DESC
             LIMIT 20
        """,
            {"id": notice_id},
        ).fetchall()
        audience = notices.count_audience(conn)
    return render_template(
        "notices/notice_show.html",
        notice=notice,
        counts=totals,
        attempts=attempts,
        audience=audience,
        action_form=EmptyForm(),
    )


@bp.get("/<int:notice_id>/progress.json")
@auth.admin_required
def notice_progress(notice_id: int):
    """What the progress bar polls: state and counts by one aggregate."""
    with db.connection() as conn:
        notice = notices.get_notice(conn, notice_id)
        totals = notices.counts(conn, notice_id)
    return jsonify(notices.notice_json(notice, totals))


def _act(notice_id: int, action, message: str, then_enqueue: bool = False):
    _check_form()
    with db.connection() as conn, conn.transaction():
        result = action(conn, notice_id)
    if then_enqueue:
        _requeue(notice_id)
    flash(message.format(result=result))
    return redirect(url_for("notices.notice_show", notice_id=notice_id))


def _requeue(notice_id: int) -> None:
    """After resume, retry or send-now: fan out if never started, else enqueue pending batches."""
    with db.connection() as conn:
        notice = notices.get_notice(conn, notice_id)
    if notice["state"] == "queued":
        jobs.enqueue_notice(notice, suffix=str(int(time.time() * 1000)))
    else:
        jobs.enqueue_pending(notice_id)


@bp.post("/<int:notice_id>/pause")
@auth.admin_required
def notice_pause(notice_id: int):
    return _act(notice_id, notices.pause, "Notice paused: no new batch will start.")


@bp.post("/<int:notice_id>/resume")
@auth.admin_required
def notice_resume(notice_id: int):
    return _act(notice_id, notices.resume, "Notice resumed.", then_enqueue=True)


@bp.post("/<int:notice_id>/cancel")
@auth.admin_required
def notice_cancel(notice_id: int):
    return _act(notice_id, notices.cancel, "Notice cancelled; {result} emails will not be sent.")


@bp.post("/<int:notice_id>/retry")
@auth.admin_required
def notice_retry(notice_id: int):
    return _act(
        notice_id, notices.retry_failed, "{result} failed emails queued again.", then_enqueue=True
    )


@bp.post("/<int:notice_id>/send-now")
@auth.admin_required
def notice_send_now(notice_id: int):
    return _act(notice_id, notices.send_now, "Notice queued to go out now.", then_enqueue=True)


@bp.post("/<int:notice_id>/test")
@auth.admin_required
def notice_test(notice_id: int):
    """Send this notice's email to the signed-in admin, with a sample (invalid) accept link."""
    _check_form()
    with db.connection() as conn:
        notice, version = reminders.email_context(conn, notice_id)
    me = {"id": None, "user_id": 0, "email": g.admin["email"], "name": "", "locale": "en"}
    message = mailer.build_message(notice, version, "en", [me])
    message["subject"] = f"[Test] {message['subject']}"
    message["categories"] = ["policy-notice-test"]
    try:
        message_id = mailer.send(db.connection, message, notice_id=notice_id, is_test=True)
    except mailer.SendError as exc:
        flash(f"The test email was not accepted: {exc.detail}")
    else:
        with db.connection() as conn, conn.transaction():
            audit.record(
                conn, "notice.test_sent", f"notice:{notice_id}", message_id=message_id or ""
            )
        flash(f"Test email sent to {g.admin['email']}.")
    return redirect(url_for("notices.notice_show", notice_id=notice_id))


@bp.get("/<int:notice_id>/recipients")
@auth.admin_required
def recipient_list(notice_id: int):
    state = request.args.get("state") or None
    if state is not None and state not in STATES:
        raise ValidationError(f"Unknown state {state!r}.", fields={"state": ", ".join(STATES)})
    after = request.args.get("after", type=bigint) or 0
    q = (request.args.get("q") or "").strip() or None
    with db.connection() as conn:
        notice = notices.get_notice(conn, notice_id)
        rows = ledger.recipients(conn, notice_id, state=state, q=q, after=after, limit=100)
    return render_template(
        "notices/recipient_list.html", notice=notice, rows=rows, state=state, q=q, states=STATES
    )


@bp.get("/deliveries/<int:delivery_id>")
@auth.admin_required
def delivery_show(delivery_id: int):
    with db.connection() as conn:
        history = ledger.delivery_history(conn, delivery_id)
        if history is None:
            raise NotFound(f"No delivery with id {delivery_id}.")
        notice = notices.get_notice(conn, history["delivery"]["notice_id"])
        others = ledger.user_deliveries(conn, history["delivery"]["user_id"])
    return render_template("notices/delivery_show.html", notice=notice, others=others, **history)


@bp.get("/undeliverable")
@auth.admin_required
def undeliverable_list():
    with db.connection() as conn:
        rows = conn.execute(
            """
            SELECT id, external_id, email, name, email_undeliverable_at, email_undeliverable_reason
              FROM users
             WHERE email_undeliverable_at IS NOT NULL
          ORDER BY email_undeliverable_at DESC
             LIMIT 500
        """
        ).fetchall()
    return render_template("notices/undeliverable_list.html", rows=rows, action_form=EmptyForm())


@bp.post("/undeliverable/<int:user_id>/reset")
@auth.admin_required
def undeliverable_reset(user_id: int):
    """The address works again (the user fixed their mailbox): later notices include it."""
    _check_form()
    with db.connection() as conn, conn.transaction():
        row = conn.execute(
            """
            UPDATE users
               SET email_undeliverable_at = NULL, email_undeliverable_reason = NULL
             WHERE id = %(id)s AND email_undeliverable_at IS NOT NULL
         RETURNING external_id
        """,
            {"id": user_id},
        ).fetchone()
        if row is None:
            raise Conflict("This address is not marked undeliverable.")
        audit.record(conn, "user.email_reset", f"user:{row['external_id']}")
    flash(f"User {row['external_id']} will receive email again.")
    return redirect(url_for("notices.undeliverable_list"))


@bp.get("/outbox")
@auth.admin_required
def outbox_list():
    with db.connection() as conn:
        rows = mailer.list_outbox(conn, after=request.args.get("after", type=bigint))
    return render_template("notices/outbox_list.html", rows=rows)


@bp.get("/outbox/<int:message_id>")
@auth.admin_required
def outbox_show(message_id: int):
    with db.connection() as conn:
        message = mailer.get_outbox(conn, message_id)
    return render_template("notices/outbox_show.html", message=message)


@bp.get("/outbox/<int:message_id>.html")
@auth.admin_required
def outbox_html(message_id: int):
    """The HTML part as the recipient's mail client would get it; nothing in it may run."""
    with db.connection() as conn:
        message = mailer.get_outbox(conn, message_id)
    response = Response(message["html_body"], mimetype="text/html")
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
    )
    return response


# --- JSON API -------------------------------------------------------------------------------


@api_bp.before_request
def require_api_key() -> None:
    with db.connection() as conn:
        g.api_key = auth.api_key_from_request(conn)


@api_bp.get("/notices/<int:notice_id>")
def notice_json(notice_id: int):
    with db.connection() as conn:
        notice = notices.get_notice(conn, notice_id)
        totals = notices.counts(conn, notice_id)
    return jsonify(notices.notice_json(notice, totals))
