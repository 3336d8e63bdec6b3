"""SQL for policies and their versions, over a connection passed in."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from psycopg import Connection
from psycopg.errors import UniqueViolation
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from . import markdown
from .errors import Conflict, NotFound, PayloadTooLarge, ValidationError
from .models import Policy, Version

SLUG = re.compile(r"^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$")
VERDICTS = ("cosmetic", "minor", "material")
ACCEPTANCE_MODES = ("explicit", "notice", "none")
MAX_SUMMARY = 2000
# Publishing "now" from a form takes a moment; an effective date this close to the past is fine.
CLOCK_SKEW = timedelta(minutes=2)


def _fetch_one(conn: Connection, query: str, params: dict) -> Version | None:
    with conn.cursor(row_factory=class_row(Version)) as cur:
        cur.execute(query, params)
        return cur.fetchone()


def _fetch_all(conn: Connection, query: str, params: dict) -> list[Version]:
    with conn.cursor(row_factory=class_row(Version)) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def check_slug(slug: str) -> str:
    if not SLUG.match(slug or ""):
        raise ValidationError(
            "Invalid slug: use 1–64 lower-case letters, digits and inner hyphens, e.g. 'privacy'.",
            fields={"slug": "lower-case letters, digits and hyphens, 1–64 characters"},
        )
    return slug


def check_markdown(body: str, max_bytes: int) -> str:
    """Validate policy text and return its canonical form."""
    if body is None or not body.strip():
        raise ValidationError("The policy text is empty.", fields={"body_md": "must not be empty"})
    size = len(body.encode("utf-8"))
    if size > max_bytes:
        raise PayloadTooLarge(
            f"The policy text is {size:,} bytes; the limit is {max_bytes:,} bytes.",
            fields={"body_md": f"at most {max_bytes:,} bytes"},
        )
    bad_lines = markdown.control_characters(body)
    if bad_lines:
        where = ", ".join(map(str, bad_lines[:5]))
        raise ValidationError(
            f"The policy text contains control characters (line {where}).",
            fields={"body_md": "contains control characters"},
        )
    return markdown.canonical(body)


def create_policy(conn: Connection, slug: str, title: str) -> Policy:
    check_slug(slug)
    title = (title or "").strip()
    if not 1 <= len(title) <= 200:
        raise ValidationError(
            "A title of 1–200 characters is required.", fields={"title": "1–200 characters"}
        )
    try:
        with conn.transaction(), conn.cursor(row_factory=class_row(Policy)) as cur:
            cur.execute(
                """
                INSERT INTO policies (slug, title)
                VALUES (%(slug)s, %(title)s)
                RETURNING *
            """,
                {"slug": slug, "title": title},
            )
            return cur.fetchone()
    except UniqueViolation as exc:
        raise Conflict(
            f"A policy with the slug '{slug}' already exists.", fields={"slug": "already taken"}
        ) from exc


def find_policy(conn: Connection, slug: str) -> Policy | None:
    with conn.cursor(row_factory=class_row(Policy)) as cur:
        cur.execute("SELECT * FROM policies WHERE slug = %(slug)s", {"slug": slug})
        return cur.fetchone()


def get_policy(conn: Connection, slug: str) -> Policy:
    policy = find_policy(conn, slug)
    if policy is None:
        raise NotFound(f"No policy with the slug '{slug}'.")
    return policy


def get_policy_by_id(conn: Connection, policy_id: int) -> Policy:
    with conn.cursor(row_factory=class_row(Policy)) as cur:
        cur.execute("SELECT * FROM policies WHERE id = %(id)s", {"id": policy_id})
        policy = cur.fetchone()
    if policy is None:
        raise NotFound(f"No policy with id {policy_id}.")
    return policy


def list_policies(conn: Connection) -> list[Policy]:
    with conn.cursor(row_factory=class_row(Policy)) as cur:
        cur.execute("SELECT * FROM policies ORDER BY title, slug")
        return cur.fetchall()


def find_version(conn: Connection, policy_id: int, seq: int) -> Version | None:
    return _fetch_one(
        conn,
        """
        SELECT *
          FROM policy_versions
         WHERE policy_id = %(policy_id)s AND seq = %(seq)s
    """,
        {"policy_id": policy_id, "seq": seq},
    )


def get_version(conn: Connection, policy_id: int, seq: int) -> Version:
    version = find_version(conn, policy_id, seq)
    if version is None:
        raise NotFound(f"This policy has no version {seq}.")
    return version


def get_version_by_id(conn: Connection, version_id: int) -> Version:
    with conn.cursor(row_factory=class_row(Version)) as cur:
        cur.execute("SELECT * FROM policy_versions WHERE id = %(id)s", {"id": version_id})
        version = cur.fetchone()
    if version is None:
        raise NotFound(f"No version with id {version_id}.")
    return version


def get_published(conn: Connection, policy_id: int, seq: int) -> Version:
    """A published version by number; drafts are invisible to the public."""
    version = find_version(conn, policy_id, seq)
    if version is None or not version.is_published:
        raise NotFound(f"This policy has no published version {seq}.")
    return version


def list_versions(
    conn: Connection, policy_id: int, *, published_only: bool = True
) -> list[Version]:
    """Newest first."""
    return _fetch_all(
        conn,
        """
        SELECT *
          FROM policy_versions
         WHERE policy_id = %(policy_id)s
           AND (published_at IS NOT NULL OR NOT %(published_only)s)
      ORDER BY seq DESC
    """,
        {"policy_id": policy_id, "published_only": published_only},
    )


def find_draft(conn: Connection, policy_id: int) -> Version | None:
    return _fetch_one(
        conn,
        """
        SELECT *
          FROM policy_versions
         WHERE policy_id = %(policy_id)s AND published_at IS NULL
    """,
        {"policy_id": policy_id},
    )


def in_force(conn: Connection, policy_id: int, at: datetime) -> Version | None:
    """The latest published version whose effective date has come by `at`."""
    return _fetch_one(
        conn,
        """
        SELECT *
          FROM policy_versions
         WHERE policy_id = %(policy_id)s AND effective_at <= %(at)s
           AND published_at IS NOT NULL
      ORDER BY effective_at DESC, seq DESC
         LIMIT 1
    """,
        {"policy_id": policy_id, "at": at},
    )


def upcoming(conn: Connection, policy_id: int, at: datetime) -> Version | None:
    """The next published version that is not yet in force at `at`."""
    return _fetch_one(
        conn,
        """
        SELECT *
          FROM policy_versions
         WHERE policy_id = %(policy_id)s AND effective_at > %(at)s
           AND published_at IS NOT NULL
      ORDER BY effective_at, seq
         LIMIT 1
    """,
        {"policy_id": policy_id, "at": at},
    )


def latest_published(conn: Connection, policy_id: int) -> Version | None:
    return _fetch_one(
        conn,
        """
        SELECT *
          FROM policy_versions
         WHERE policy_id = %(policy_id)s AND published_at IS NOT NULL
      ORDER BY seq DESC
         LIMIT 1
    """,
        {"policy_id": policy_id},
    )


def previous_published(conn: Connection, policy_id: int, seq: int) -> Version | None:
    """The published version numbered just before `seq`."""
    return _fetch_one(
        conn,
        """
        SELECT *
          FROM policy_versions
         WHERE policy_id = %(policy_id)s AND seq < %(seq)s AND published_at IS NOT NULL
      ORDER BY seq DESC
         LIMIT 1
    """,
        {"policy_id": policy_id, "seq": seq},
    )


def create_draft(
    conn: Connection, policy_id: int, body_md: str, *, created_by: int | None, max_bytes: int
) -> Version:
    """A new draft numbered after the last version; one open draft per policy."""
    body = check_markdown(body_md, max_bytes)
    try:
        with conn.transaction(), conn.cursor(row_factory=class_row(Version)) as cur:
            cur.execute(
                """
                INSERT INTO policy_versions
                       (policy_id, seq, body_md, body_html, content_sha256, created_by)
                SELECT %(policy_id)s, coalesce(max(seq), 0) + 1, %(body)s, %(html)s, %(sha)s,
                       %(created_by)s
                  FROM policy_versions
                 WHERE policy_id = %(policy_id)s
                RETURNING *
            """,
                {
                    "policy_id": policy_id,
                    "body": body,
                    "html": markdown.render(body),
                    "sha": markdown.content_hash(body),
                    "created_by": created_by,
                },
            )
            return cur.fetchone()
    except UniqueViolation as exc:
        draft = find_draft(conn, policy_id)
        seq = f" (version {draft.seq})" if draft else ""
        raise Conflict(
            f"This policy already has an open draft{seq}: edit or publish it first."
        ) from exc


def update_draft(conn: Connection, version_id: int, body_md: str, *, max_bytes: int) -> Version:
    body = check_markdown(body_md, max_bytes)
    with conn.transaction(), conn.cursor(row_factory=class_row(Version)) as cur:
        cur.execute(
            """
            UPDATE policy_versions
               SET body_md = %(body)s, body_html = %(html)s, content_sha256 = %(sha)s,
                   updated_at = now()
             WHERE id = %(id)s AND published_at IS NULL
            RETURNING *
        """,
            {
                "id": version_id,
                "body": body,
                "html": markdown.render(body),
                "sha": markdown.content_hash(body),
            },
        )
        version = cur.fetchone()
    if version is None:
        existing = get_version_by_id(conn, version_id)
        raise Conflict(f"Version {existing.seq} is already published and cannot be edited.")
    return version


def classify_draft(conn: Connection, version: Version) -> Version:
    """Store the classifier's suggestion on a draft, against the latest published version.

    It runs when the text is saved, so the admin reviews the very verdict that is stored; a first
    version has nothing to compare with and gets no suggestion.
    """
    from .materiality import classify

    base = previous_published(conn, version.policy_id, version.seq)
    result = classify(base.body_md, version.body_md).to_dict() if base else None
    with conn.cursor(row_factory=class_row(Version)) as cur:
        cur.execute(
            """
            UPDATE policy_versions
               SET suggested_verdict = %(verdict)s, classification = %(classification)s
             WHERE id = %(id)s AND published_at IS NULL
            RETURNING *
        """,
            {
                "id": version.id,
                "verdict": result["verdict"] if result else None,
                "classification": Jsonb(result) if result else None,
            },
        )
        return cur.fetchone() or version


def delete_draft(conn: Connection, version_id: int) -> None:
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "DELETE FROM policy_versions WHERE id = %(id)s AND published_at IS NULL",
            {"id": version_id},
        )
        if cur.rowcount == 0:
            raise Conflict("Only an unpublished draft can be discarded.")


def describe_problems(problems: dict[str, str]) -> str:
    """`check_publish`'s problems as one sentence for an error message."""
    return "; ".join(f"{field.replace('_', ' ')} {text}" for field, text in problems.items())


def check_publish(
    conn: Connection,
    version: Version,
    *,
    effective_at: datetime | None,
    summary: str,
    verdict: str | None,
    override_reason: str | None,
    acceptance_mode: str,
    now: datetime,
) -> dict[str, str]:
    """Every reason this version cannot be published with these settings, by field."""
    errors: dict[str, str] = {}
    if version.is_published:
        raise Conflict(f"Version {version.seq} is already published.")
    if effective_at is None:
        errors["effective_at"] = "is required"
    elif effective_at.tzinfo is None or effective_at.utcoffset() is None:
        errors["effective_at"] = "must include a time zone"
    elif effective_at < now - CLOCK_SKEW:
        errors["effective_at"] = "must not be in the past"
    else:
        latest = latest_published(conn, version.policy_id)
        if latest is not None and effective_at < latest.effective_at:
            errors["effective_at"] = (
                f"must be on or after version {latest.seq}'s effective date "
                f"({latest.effective_at.isoformat()})"
            )
    summary = (summary or "").strip()
    if not summary:
        errors["summary"] = "a summary of changes is required"
    elif len(summary) > MAX_SUMMARY:
        errors["summary"] = f"at most {MAX_SUMMARY} characters"
    if verdict not in VERDICTS:
        errors["verdict"] = f"must be one of {', '.join(VERDICTS)}"
    elif (
        version.suggested_verdict
        and verdict != version.suggested_verdict
        and not (override_reason or "").strip()
    ):
        errors["override_reason"] = (
            f"overriding the suggested verdict '{version.suggested_verdict}' needs a justification"
        )
    if acceptance_mode not in ACCEPTANCE_MODES:
        errors["acceptance_mode"] = f"must be one of {', '.join(ACCEPTANCE_MODES)}"
    return errors


def publish(
    conn: Connection,
    version_id: int,
    *,
    effective_at: datetime | None,
    summary: str,
    published_by: int | None,
    verdict: str | None,
    override_reason: str | None = None,
    acceptance_mode: str = "explicit",
    now: datetime,
) -> Version:
    """Publish a draft. Call inside a transaction: the row is locked while it is checked."""
    with conn.cursor(row_factory=class_row(Version)) as cur:
        cur.execute(
            "SELECT * FROM policy_versions WHERE id = %(id)s FOR UPDATE", {"id": version_id}
        )
        version = cur.fetchone()
        if version is None:
            raise NotFound(f"No version with id {version_id}.")
        # Serialise publishes of one policy so the effective-date check cannot race.
        cur.execute(
            "SELECT id FROM policies WHERE id = %(id)s FOR UPDATE", {"id": version.policy_id}
        )
        errors = check_publish(
            conn,
            version,
            effective_at=effective_at,
            summary=summary,
            verdict=verdict,
            override_reason=override_reason,
            acceptance_mode=acceptance_mode,
            now=now,
        )
        if errors:
            raise ValidationError(
                "The version cannot be published: " + describe_problems(errors) + ".",
                fields=errors,
            )
        reason = (override_reason or "").strip() or None
        if version.suggested_verdict is None or verdict == version.suggested_verdict:
            reason = reason if version.suggested_verdict is None else None
        cur.execute(
            """
            UPDATE policy_versions
               SET published_at = %(now)s, published_by = %(by)s, effective_at = %(effective_at)s,
                   summary = %(summary)s, verdict = %(verdict)s,
                   verdict_override_reason = %(reason)s, acceptance_mode = %(mode)s,
                   updated_at = %(now)s
             WHERE id = %(id)s
            RETURNING *
        """,
            {
                "id": version_id,
                "now": now,
                "by": published_by,
                "effective_at": effective_at,
                "summary": summary.strip(),
                "verdict": verdict,
                "reason": reason,
                "mode": acceptance_mode,
            },
        )
        return cur.fetchone()
