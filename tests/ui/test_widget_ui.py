"""The widget in Chromium on the demo host page: banner, blocking modal, keyboard-only accept."""

from __future__ import annotations

import helpers
import pytest
from acceptance_helpers import accept, publish_version, put_user
from helpers import ADMIN_EMAIL, ADMIN_PASSWORD, backdate, shot

pytestmark = pytest.mark.ui


def _focused_text(page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.textContent")


def test_demo_host_banner_then_blocking_modal_accepted_by_keyboard(app, api, db, live_server, page):
    from notifier import auth
    from notifier import db as notifier_db

    with app.app_context(), notifier_db.connection() as conn:
        auth.create_admin(conn, ADMIN_EMAIL, ADMIN_PASSWORD)
    first = publish_version(app, effective_in_days=-400)
    version = publish_version(
        app, body=helpers.POLICY_V2, effective_in_days=5, summary="Logs are kept for 180 days."
    )
    put_user(api, "u-1", name="Ann Example")
    assert accept(api, "u-1", first).status_code == 201  # accepted at sign-up, say

    page.goto(f"{live_server}/admin/")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Policies").wait_for()

    # Before the effective date: a dismissible banner, no dialog.
    page.goto(f"{live_server}/demo/host?user=u-1")
    banner = page.get_by_role("region", name="Privacy Policy is changing")
    banner.wait_for()
    assert "Logs are kept for 180 days." in banner.inner_text()
    assert page.get_by_role("dialog").count() == 0
    shot(page, "widget-01-banner")
    page.get_by_role("button", name="Not now").click()
    assert banner.count() == 0

    report = f"{live_server}/admin/reports/versions/{version.id}"
    page.goto(report)
    assert page.locator("[data-count=accepted] b").inner_text() == "0"

    # After the effective date: a blocking modal, at 200% zoom (half the CSS viewport).
    backdate(db, version.id, 6)
    page.set_viewport_size({"width": 640, "height": 400})
    page.goto(f"{live_server}/demo/host?user=u-1")
    dialog = page.get_by_role("dialog", name="Privacy Policy: please accept the updated version")
    dialog.wait_for()
    assert dialog.get_attribute("aria-modal") == "true"
    shot(page, "widget-02-modal-zoomed")
    assert page.evaluate("document.activeElement.classList.contains('pn-title')")
    assert page.evaluate("document.querySelector('main').hasAttribute('inert')")

    # Keyboard only: Tab cycles inside the dialog (focus trap) and Enter accepts.
    seen = []
    for _ in range(8):
        page.keyboard.press("Tab")
        assert page.evaluate("!!document.activeElement.closest('[role=dialog]')")
        seen.append(_focused_text(page))
    assert seen[:4] == [
        "See exactly what changed (opens in a new tab)",
        "Read the full text (opens in a new tab)",
        "I accept",
        "Decline",
    ]
    assert seen[4:] == seen[:4]  # wrapped around, never left the dialog
    page.keyboard.press("Shift+Tab")
    assert _focused_text(page) == "I accept"
    accept_button = dialog.get_by_role("button", name="I accept")
    accept_button.scroll_into_view_if_needed()
    assert accept_button.is_visible()
    page.keyboard.press("Enter")
    page.get_by_text("accepted: privacy v2").wait_for()
    assert page.get_by_role("dialog").count() == 0
    assert not page.evaluate("document.querySelector('main').hasAttribute('inert')")
    shot(page, "widget-03-accepted")

    row = db.execute(
        "SELECT method, prompt_text FROM acceptances WHERE version_id = %s", [version.id]
    ).fetchone()
    assert row["method"] == "click" and "I accept" in row["prompt_text"]
    assert row["prompt_text"].startswith("Privacy Policy: please accept the updated version")

    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(report)
    assert page.locator("[data-count=accepted] b").inner_text() == "1"
    assert page.locator("[data-count=pending] b").inner_text() == "0"
    shot(page, "widget-04-report")

    # A policy's first version: nothing changed before it, so no redline and no "updated".
    publish_version(app, slug="cookies", title="Cookie Policy", summary="How we use cookies.")
    page.goto(f"{live_server}/demo/host?user=u-1")
    dialog = page.get_by_role("dialog", name="Cookie Policy: please accept it to continue")
    dialog.wait_for()
    assert "Summary: How we use cookies." in dialog.inner_text()
    assert "Please review our Cookie Policy and accept it to continue." in dialog.inner_text()
    assert dialog.get_by_role("link", name="See exactly what changed").count() == 0
    dialog.get_by_role("button", name="I accept").click()
    page.get_by_text("accepted: cookies v1").wait_for()
    assert page.console_errors == []
