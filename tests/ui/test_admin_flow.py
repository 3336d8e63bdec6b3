"""The admin flow in a real Chromium: sign in, policy, draft, preview, publish, public pages."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from helpers import ADMIN_EMAIL, ADMIN_PASSWORD, shot

pytestmark = pytest.mark.ui


def test_admin_publishes_a_policy_that_the_public_can_read(app, live_server, page):
    from notifier import auth, db

    with app.app_context(), db.connection() as conn:
        auth.create_admin(conn, ADMIN_EMAIL, ADMIN_PASSWORD)

    page.goto(f"{live_server}/admin/")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Policies").wait_for()
    shot(page, "admin-01-signed-in")

    page.get_by_role("link", name="New policy").click()
    page.get_by_label("Title").fill("Privacy Policy")
    page.get_by_label("Slug (used in public URLs)").fill("privacy")
    page.get_by_role("button", name="Create policy").click()

    editor = page.get_by_label("Text (Markdown)")
    editor.fill("# Privacy Policy\n\n## Data we collect\n\nWe collect your **email address**.\n")
    # The live preview renders the Markdown while typing, through the CSP-safe admin.js.
    page.locator("#preview strong", has_text="email address").wait_for()
    shot(page, "admin-02-preview")
    page.get_by_role("button", name="Save draft").click()
    page.get_by_role("heading", name="Publish version 1").wait_for()

    effective = datetime.now(ZoneInfo("Europe/Paris")) + timedelta(days=1)
    page.get_by_label("Effective from").fill(effective.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Time zone").fill("Europe/Paris")
    page.get_by_label("Summary of changes").fill("Our first privacy policy.")
    page.get_by_label("Material — changes rights or obligations").check()
    shot(page, "admin-03-publish-form")
    page.get_by_role("button", name="Publish version 1").click()
    page.locator(".flash", has_text="Version 1 published").wait_for()

    page.goto(f"{live_server}/policies/privacy")
    assert "This policy changes on" in page.content()  # upcoming until tomorrow
    page.goto(f"{live_server}/policies/privacy/versions")
    assert page.get_by_role("link", name="Version 1").is_visible()
    assert "Our first privacy policy." in page.content()
    page.goto(f"{live_server}/policies/privacy/versions/1")
    assert page.locator("strong", has_text="email address").is_visible()
    shot(page, "admin-04-public-permalink")
    feed = page.request.get(f"{live_server}/policies/privacy/feed.atom")
    assert feed.ok and "version 1" in feed.text()
    assert page.console_errors == []
