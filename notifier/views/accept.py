"""The email link: /accept/<token> shows the change and records an acceptance (email_link)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, render_template, request

from policy_versions import store

from .. import acceptances, audience, db, hostwebhooks, versions
from ..errors import Conflict, NotFound
from ..tokens import TokenError, read_acceptance_token

bp = Blueprint("accept", __name__)

PROMPT = "I have read the changes to the {title} and I accept version {seq}."
PROMPT_FIRST = "I have read the {title} and I accept version {seq}."  # nothing changed before it


def _load(token: str, now: datetime) -> dict:
    """Everything the page needs, or a clear error page for a bad, expired or stale link."""
    try:
        data = read_acceptance_token(token)
    except TokenError as exc:
        return {"error": exc.message, "status": 400}
    with db.connection() as conn:
        try:
            user = audience.get_user_by_id(conn, data["user_id"])
            version = conn.execute(
                """
                SELECT v.id, v.uid, v.seq, v.policy_id, v.content_sha256, v.effective_at,
                       v.published_at, v.acceptance_mode, v.verdict, v.summary, p.slug, p.title
                  FROM policy_versions v
                  JOIN policies p ON p.id = v.policy_id
                 WHERE v.id = %(id)s
            """,
                {"id": data["version_id"]},
            ).fetchone()
            if version is None or user["erased_at"] is not None:
                raise NotFound("This link no longer matches an account or a policy version.")
            acceptances.check_acceptable(conn, version, now)
        except (NotFound, Conflict) as exc:
            return {"error": exc.message, "status": exc.status}
        accepted = acceptances.existing(conn, user["id"], version["id"], "accepted")
        full = store.get_version_by_id(conn, version["id"])
        base = store.previous_published(conn, full.policy_id, full.seq)
    return {
        "user": user,
        "version": version,
        "delivery_id": data["delivery_id"],
        "accepted": accepted,
        "redline": versions.redline_html(base, full),
        "full": full,
        "prompt": (PROMPT_FIRST if version["seq"] == 1 else PROMPT).format(
            title=version["title"], seq=version["seq"]
        ),
    }


@bp.get("/accept/<token>")
def accept_show(token: str):
    context = _load(token, datetime.now(UTC))
    if "error" in context:
        return render_template("accept/invalid.html", message=context["error"]), context["status"]
    return render_template("accept/accept_show.html", token=token, **context)


@bp.post("/accept/<token>")
def accept_create(token: str):
    now = datetime.now(UTC)
    context = _load(token, now)
    if "error" in context:
        return render_template("accept/invalid.html", message=context["error"]), context["status"]
    decision = "declined" if request.form.get("decision") == "decline" else "accepted"
    with db.connection() as conn, conn.transaction():
        row, created, events = acceptances.record(
            conn,
            context["user"],
            context["version"],
            decision=decision,
            method="email_link",
            now=now,
            ip=acceptances.normalise_ip(request.remote_addr),
            user_agent=request.headers.get("User-Agent", ""),
            locale=request.accept_languages.best or None,
            prompt_text=context["prompt"],
            delivery_id=context["delivery_id"],
        )
    hostwebhooks.enqueue(events)
    return render_template(
        "accept/accept_done.html", row=row, created=created, version=context["version"]
    ), 201 if created else 200
