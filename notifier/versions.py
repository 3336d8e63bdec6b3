"""Application steps around policy versions: drafts, review, publishing, JSON shapes."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app, url_for
from psycopg import Connection

from policy_versions import diff, store
from policy_versions.errors import ValidationError
from policy_versions.materiality import classify
from policy_versions.models import Policy, Version

from . import audit
from .security import display_zone


def _max_bytes() -> int:
    return current_app.config["MAX_MARKDOWN_BYTES"]


def create_draft(conn: Connection, policy: Policy, body_md: str, admin_id: int | None) -> Version:
    version = store.create_draft(
        conn, policy.id, body_md, created_by=admin_id, max_bytes=_max_bytes()
    )
    version = store.classify_draft(conn, version)
    audit.record(
        conn,
        "version.drafted",
        f"policy:{policy.slug}/v{version.seq}",
        sha256=version.content_sha256,
        suggested_verdict=version.suggested_verdict,
    )
    return version


def update_draft(conn: Connection, policy: Policy, version: Version, body_md: str) -> Version:
    version = store.update_draft(conn, version.id, body_md, max_bytes=_max_bytes())
    version = store.classify_draft(conn, version)
    audit.record(
        conn,
        "version.edited",
        f"policy:{policy.slug}/v{version.seq}",
        sha256=version.content_sha256,
        suggested_verdict=version.suggested_verdict,
    )
    return version


GRACE_MAX_DAYS = 365
GRACE_RANGE_MESSAGE = f"The grace period must be a whole number of days from 0 to {GRACE_MAX_DAYS}."
GRACE_RANGE_FIELD = f"must be a whole number of days from 0 to {GRACE_MAX_DAYS}"
GRACE_MODE_MESSAGE = (
    "A grace period applies only to explicit acceptance: choose explicit acceptance "
    "or set the grace period to 0."
)


def check_grace(grace_days: int, acceptance_mode: str) -> ValidationError | None:
    """Why this grace period cannot be stored with this mode, or None.

    An unknown mode is left to `store.check_publish`, which names it.
    """
    if not 0 <= grace_days <= GRACE_MAX_DAYS:
        return ValidationError(GRACE_RANGE_MESSAGE, fields={"grace_days": GRACE_RANGE_FIELD})
    if grace_days and acceptance_mode in store.ACCEPTANCE_MODES and acceptance_mode != "explicit":
        return ValidationError(
            GRACE_MODE_MESSAGE,
            fields={"grace_days": "must be 0 unless acceptance_mode is explicit"},
        )
    return None


def grace_days(conn: Connection, version_id: int) -> int:
    """Days after the effective date before an explicit prompt blocks (no row: none)."""
    row = conn.execute(
        """
        SELECT grace
          FROM version_grace
         WHERE version_id = %(version_id)s
    """,
        {"version_id": version_id},
    ).fetchone()
    return row["grace"].days if row else 0


def publish(
    conn: Connection,
    policy: Policy,
    version: Version,
    *,
    effective_at: datetime | None,
    summary: str,
    verdict: str | None,
    override_reason: str | None,
    acceptance_mode: str,
    grace_days: int = 0,
    published_by: int | None,
    now: datetime,
) -> Version:
    """Publish inside the caller's transaction and write the grace period and audit entry with it.

    A bad grace period is refused before anything is written, together with every other reason
    the publish would be refused, so that one correction is enough.
    """
    bad_grace = check_grace(grace_days, acceptance_mode)
    if bad_grace is not None:
        others = store.check_publish(
            conn,
            version,
            effective_at=effective_at,
            summary=summary,
            verdict=verdict,
            override_reason=override_reason,
            acceptance_mode=acceptance_mode,
            now=now,
        )
        if others:
            raise ValidationError(
                f"{bad_grace.message} Also: " + store.describe_problems(others) + ".",
                fields={**others, **bad_grace.fields},
            )
        raise bad_grace
    version = store.publish(
        conn,
        version.id,
        effective_at=effective_at,
        summary=summary,
        published_by=published_by,
        verdict=verdict,
        override_reason=override_reason,
        acceptance_mode=acceptance_mode,
        now=now,
    )
    if grace_days:
        conn.execute(
            """
            INSERT INTO version_grace (version_id, grace)
            VALUES (%(version_id)s, %(grace)s)
        """,
            {"version_id": version.id, "grace": timedelta(days=grace_days)},
        )
    audit.record(
        conn,
        "version.published",
        f"policy:{policy.slug}/v{version.seq}",
        effective_at=version.effective_at.isoformat(),
        verdict=version.verdict,
        suggested_verdict=version.suggested_verdict,
        override_reason=version.verdict_override_reason,
        acceptance_mode=version.acceptance_mode,
        grace_days=grace_days,
        sha256=version.content_sha256,
    )
    return version


def comparison_base(conn: Connection, version: Version, against: str | None) -> Version | None:
    """The published version to compare with: `?against=<n>` when given, else the previous one."""
    if against is None:
        return store.previous_published(conn, version.policy_id, version.seq)
    if not against.isdigit():
        raise ValidationError(
            f"against must be a version number, e.g. ?against=1 (got {against[:20]!r}).",
            fields={"against": "a published version number"},
        )
    if int(against) == version.seq:
        raise ValidationError(
            "Compare a version with another one, not with itself.",
            fields={"against": "must differ from the version shown"},
        )
    return store.get_published(conn, version.policy_id, int(against))


def changes_json(policy: Policy, old: Version, new: Version) -> dict:
    """The structured diff and the classifier's verdict, for the API."""
    result = diff.compute(old.body_md, new.body_md)
    verdict = classify(old.body_md, new.body_md, diff=result)
    return {
        "policy": policy.slug,
        "from": old.seq,
        "to": new.seq,
        "approximate": result.approximate,
        "summary_text": diff.summary_text(result),
        "changes": [change.to_dict() for change in result.changes],
        "classification": verdict.to_dict(),
    }


def redline_html(old: Version | None, new: Version) -> str | None:
    if old is None:
        return None
    return diff.redline(old.body_md, new.body_md)


def review_context(conn: Connection, policy: Policy, version: Version, now: datetime) -> dict:
    """What an admin needs beside a version: the text it replaces and the redline."""
    current = store.in_force(conn, policy.id, now)
    base = store.previous_published(conn, version.policy_id, version.seq)
    return {"base": base, "redline": redline_html(base, version), "in_force": current}


def fill_publish_defaults(form, version: Version, context: dict) -> None:
    """Sensible defaults: effective in 30 days at midnight local time; the suggested verdict."""
    zone = display_zone()
    if not form.timezone.data:
        form.timezone.data = zone.key
    if form.effective_at.data is None:
        start = (datetime.now(zone) + timedelta(days=30)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        form.effective_at.data = start.replace(tzinfo=None)
    if not form.verdict.data:
        form.verdict.data = version.suggested_verdict or (
            "material" if context["base"] is None else None
        )


def policy_overview(conn: Connection, now: datetime) -> list[dict]:
    """Every policy with its version in force, upcoming version and open draft."""
    rows = []
    for policy in store.list_policies(conn):
        rows.append(
            {
                "policy": policy,
                "in_force": store.in_force(conn, policy.id, now),
                "upcoming": store.upcoming(conn, policy.id, now),
                "draft": store.find_draft(conn, policy.id),
            }
        )
    return rows


def version_json(policy: Policy, version: Version, *, include_body: bool = True) -> dict:
    data = {
        "policy": policy.slug,
        "number": version.seq,
        "uid": str(version.uid),
        "status": "published" if version.is_published else "draft",
        "effective_at": version.effective_at.isoformat() if version.effective_at else None,
        "published_at": version.published_at.isoformat() if version.published_at else None,
        "summary": version.summary or None,
        "content_sha256": version.content_sha256,
        "verdict": version.verdict,
        "suggested_verdict": version.suggested_verdict,
        "verdict_override_reason": version.verdict_override_reason,
        "acceptance_mode": version.acceptance_mode,
    }
    if version.is_published:
        data["url"] = url_for(
            "public.version_show", slug=policy.slug, seq=version.seq, _external=True
        )
        data["changes_url"] = url_for(
            "public.version_changes", slug=policy.slug, seq=version.seq, _external=True
        )
    if include_body:
        data["body_markdown"] = version.body_md
        data["body_html"] = version.body_html
    return data
