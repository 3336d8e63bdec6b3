"""Small helpers shared by the tests: acting through the admin UI as a person would."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import psycopg

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def with_database(url: str, name: str) -> str:
    """The same server URL naming another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def csrf_token(client, path: str = "/admin/signin") -> str:
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def shot(page, name: str) -> None:
    """Save a screenshot of a browser step as a test artefact."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


POLICY_V1 = """# Privacy Policy

**Last updated:** 1 March 2026

## 1. What we collect

We collect your name and email address when you create an account.

## 2. How long we keep it

We keep account data for 30 days after you close your account.
"""

POLICY_V2 = POLICY_V1.replace("30 days", "90 days").replace(
    "email address when", "email address and phone number when"
)


def create_policy(client, admin, slug="privacy", title="Privacy Policy"):
    response = client.post(
        "/admin/policies/new",
        data={
            "csrf_token": admin["csrf"],
            "slug": slug,
            "title": title,
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    policy_id = int(response.headers["Location"].split("/policies/")[1].split("/")[0])
    return policy_id


def create_draft(client, admin, policy_id, body=POLICY_V1):
    response = client.post(
        f"/admin/policies/{policy_id}/versions/new",
        data={
            "csrf_token": admin["csrf"],
            "body_md": body,
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


def publish_form(
    admin,
    *,
    days=30,
    tz="Europe/Paris",
    summary="Clearer wording.",
    verdict="material",
    mode="explicit",
    override_reason="",
    when=None,
):
    local = when or (datetime.now(ZoneInfo(tz)) + timedelta(days=days))
    return {
        "csrf_token": admin["csrf"],
        "effective_at": local.strftime("%Y-%m-%dT%H:%M"),
        "timezone": tz,
        "summary": summary,
        "verdict": verdict,
        "override_reason": override_reason,
        "acceptance_mode": mode,
    }


def publish(client, admin, policy_id, version_id, **kw):
    response = client.post(
        f"/admin/policies/{policy_id}/versions/{version_id}/publish", data=publish_form(admin, **kw)
    )
    return response


def backdate(db: psycopg.Connection, version_id: int, days: int) -> None:
    """Move a published version's dates into the past (the trigger forbids UPDATE, so re-insert).

    Tests need versions already in force; publishing refuses past dates, as it should.
    """
    db.execute("ALTER TABLE policy_versions DISABLE TRIGGER policy_versions_guard")
    try:
        db.execute(
            """
            UPDATE policy_versions
               SET effective_at = effective_at - make_interval(days => %(d)s),
                   published_at = published_at - make_interval(days => %(d)s)
             WHERE id = %(id)s
        """,
            {"d": days, "id": version_id},
        )
    finally:
        db.execute("ALTER TABLE policy_versions ENABLE TRIGGER policy_versions_guard")
