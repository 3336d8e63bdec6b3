"""The whole mission in one browser journey, from a clean database, as a new user would live it.

An admin signs in, has a privacy policy v1 in force and 20 users; adds a material change (data
shared with AI providers) in the editor; sees the redline and the `material` verdict with its
reasons; is refused a 5-day notice window and publishes with 30 days; watches the notice's progress
bar reach 100% while two real `python worker.py` processes send through the fake SendGrid server.
Then user A accepts from the email's link, user B accepts in the demo host page's widget, user C
declines there; the report shows 2 accepted, 1 declined, the rest pending; the evidence CSV and
`flask --app notifier evidence verify` agree. A screenshot of each step lands in test-artifacts/.
"""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from helpers import ADMIN_EMAIL, ADMIN_PASSWORD, POLICY_V1, backdate, shot

pytestmark = pytest.mark.ui

ROOT = Path(__file__).resolve().parents[2]
ZONE = ZoneInfo("Europe/Paris")
USERS = 20
BATCH = 5  # four Mail Send requests for 20 users: progress moves in steps
AI_SECTION = (
    "## 3. Who we share it with\n\n"
    "We share the questions you ask our in-app assistant, and the account data needed to "
    "answer them, with third-party AI model providers, who process them to generate answers.\n"
)
SUMMARY = "We now share your assistant questions with AI model providers to answer them."


def _local(days: int) -> str:
    """A `datetime-local` value `days` from now in Paris, as a person would type it."""
    return (datetime.now(ZONE) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")


def _start_worker(env: dict, log) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "worker.py")],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # SIGTERM reaches the worker and its work-horse together
    )


def _stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _sign_in(page, base: str) -> None:
    page.goto(f"{base}/admin/")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Policies").wait_for()


def _stat(page, name: str) -> str:
    return page.locator(f"[data-count={name}] b").inner_text()


def test_journey_publish_a_material_change_notify_accept_report_and_verify(
    app, api, db, servers, fake_sendgrid, live_server, browser, page, tmp_path
):
    started = time.monotonic()
    base = live_server
    settings = {
        "SEND_BATCH_SIZE": BATCH,
        "SWEEP_INTERVAL_SECONDS": 1,
        "SEND_RETRY_BASE_SECONDS": 0.05,
        "SEND_RETRY_MAX_SECONDS": 0.2,
        "PUBLIC_BASE_URL": base,  # the email links must point at this server
    }
    app.config.update(settings)
    fake_sendgrid.set_latency(0.2)
    env = {
        **os.environ,
        **{k: str(v) for k, v in settings.items()},
        "DATABASE_URL": app.config["DATABASE_URL"],
        "REDIS_URL": servers["REDIS_URL"],
        "SECRET_KEY": app.config["SECRET_KEY"],  # signs the accept links the web app reads
        "SENDGRID_API_KEY": fake_sendgrid.api_key,
        "SENDGRID_API_HOST": fake_sendgrid.url,
    }
    log_path = tmp_path / "workers.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed in finally, after the workers stop
    # Two real workers, as in production: they start now and are ready by the time we publish.
    workers = [_start_worker(env, log), _start_worker(env, log)]
    try:
        _journey(app, api, db, fake_sendgrid, base, browser, page, log_path)
    finally:
        for process in workers:
            _stop(process)
        log.close()
    elapsed = time.monotonic() - started
    assert elapsed < 60, f"the journey took {elapsed:.1f} s"


def _journey(app, api, db, fake_sendgrid, base, browser, page, log_path) -> None:  # noqa: PLR0915
    from notifier import auth
    from notifier import db as notifier_db

    # 1. The first admin is created on the command line's behalf; they sign in.
    with app.app_context(), notifier_db.connection() as conn:
        auth.create_admin(conn, ADMIN_EMAIL, ADMIN_PASSWORD)
    _sign_in(page, base)
    assert "No policy yet" in page.content()  # a clean database
    shot(page, "journey-01-signed-in")

    # 2. Privacy policy v1, written and published in the UI, then moved into the past (in force).
    page.get_by_role("link", name="New policy").click()
    page.get_by_label("Title").fill("Privacy Policy")
    page.get_by_label("Slug (used in public URLs)").fill("privacy")
    page.get_by_role("button", name="Create policy").click()
    page.get_by_label("Text (Markdown)").fill(POLICY_V1)
    page.locator("#preview h2", has_text="1. What we collect").wait_for()
    page.get_by_role("button", name="Save draft").click()
    page.get_by_role("heading", name="Publish version 1").wait_for()
    page.get_by_label("Effective from").fill(_local(1))
    page.get_by_label("Summary of changes").fill("Our privacy policy.")
    page.get_by_label("No acceptance needed").check()  # accepted at sign-up, in the host app
    page.get_by_label("No, in-app notice only").check()
    page.get_by_role("button", name="Publish version 1").click()
    page.locator(".flash", has_text="Version 1 published").wait_for()
    v1 = db.execute("SELECT id, content_sha256 FROM policy_versions WHERE seq = 1").fetchone()
    backdate(db, v1["id"], 2)

    # ... and 20 users synced by the host application through the API.
    people = [
        {
            "external_id": f"u-{n:02}",
            "email": f"user{n:02}@example.com",
            "name": {1: "Ann Archer", 2: "Ben Baker", 3: "Cleo Clark"}.get(n, f"User {n:02}"),
            "locale": "en",
        }
        for n in range(1, USERS + 1)
    ]
    response = api.post("/api/v1/users/bulk", json={"users": people})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["created"] == USERS
    ann, ben, cleo = people[:3]

    page.goto(f"{base}/policies/privacy")
    assert page.get_by_role("heading", name="Privacy Policy").first.is_visible()
    assert "This policy changes on" not in page.content()  # v1 is in force, nothing upcoming
    shot(page, "journey-02-v1-in-force")

    # 3. The admin writes version 2 in the editor: a new section sharing data with AI providers.
    page.goto(f"{base}/admin/")
    page.get_by_role("link", name="Privacy Policy").first.click()
    page.get_by_role("link", name="New version").click()
    editor = page.get_by_label("Text (Markdown)")
    assert "We collect your name and email address" in editor.input_value()  # pre-filled with v1
    editor.focus()
    page.keyboard.press("Control+End")
    page.keyboard.insert_text("\n" + AI_SECTION)
    page.locator("#preview h2", has_text="3. Who we share it with").wait_for()
    shot(page, "journey-03-editing-v2")
    page.get_by_role("button", name="Save draft").click()
    page.locator(".flash", has_text="Draft version 2 saved.").wait_for()
    redline = page.get_by_role("region", name="Changes against version 1")
    assert redline.locator("ins", has_text="AI model providers").count() >= 1
    verdict = page.get_by_role("region", name="Suggested: material change")
    verdict_text = verdict.inner_text()
    assert "3. Who we share it with" in verdict_text
    assert "data sharing" in verdict_text and "material" in verdict_text
    assert "who receives data was added" in verdict_text
    shot(page, "journey-04-redline-and-verdict")

    # 4. A 5-day notice window is refused, in words; 30 days publishes.
    publish = page.get_by_role("button", name="Publish version 2")
    assert page.get_by_label("Material — changes rights or obligations").is_checked()
    page.get_by_label("Effective from").fill(_local(5))
    page.get_by_label("Summary of changes").fill(SUMMARY)
    publish.click()
    alert = page.get_by_role("alert").filter(has_text="days")
    alert.first.wait_for()
    refusal = page.get_by_role("region", name="Publish version 2").inner_text()
    assert "A material change needs at least 30 days' notice; this one gives 5." in refusal
    assert "Move the effective date, or give a reason" in refusal
    assert "at least 30 days after the notice goes out (5 given)" in refusal  # by the field
    assert page.evaluate("window.scrollY") > 0  # the browser lands on the form, not the top
    assert db.execute("SELECT count(*) AS n FROM notices").fetchone()["n"] == 1  # v1's only
    assert (
        db.execute("SELECT published_at FROM policy_versions WHERE seq = 2").fetchone()[
            "published_at"
        ]
        is None
    )
    shot(page, "journey-05-window-refused")
    # The refused form comes back as 422, which Chromium logs; that one is expected, nothing else.
    assert page.console_errors == [
        "Failed to load resource: the server responded with a status of 422 (UNPROCESSABLE ENTITY)"
    ]
    page.console_errors.clear()

    page.get_by_label("Effective from").fill(_local(30))
    assert page.get_by_label("Summary of changes").input_value() == SUMMARY  # kept on refusal
    page.get_by_role("button", name="Publish version 2").click()
    page.locator(".flash", has_text="Version 2 published").wait_for()
    v2 = db.execute(
        "SELECT id, uid, content_sha256, verdict, acceptance_mode FROM policy_versions"
        " WHERE seq = 2"
    ).fetchone()
    assert (v2["verdict"], v2["acceptance_mode"]) == ("material", "explicit")
    shot(page, "journey-06-published")

    # 5. The notice page: the progress bar (polling its JSON) moves as the workers send; once the
    # notice is done the page reloads itself, so its buttons and finish time are current.
    page.locator(".facts a", has_text="notice").click()
    page.get_by_role("heading", name="Progress").wait_for()
    shot(page, "journey-07-notice-started")
    try:
        page.locator("#notice-state", has_text="done").wait_for(timeout=30_000)
    except Exception:  # pragma: no cover - show why
        pytest.fail("notice never finished; workers said:\n" + log_path.read_text()[-3000:])
    page.wait_for_load_state()  # the page reloads itself once the notice is finished
    assert page.get_by_role("button", name="Pause").count() == 0
    assert page.get_by_role("button", name="Cancel").count() == 0
    assert "Attempts that did not go through" not in page.content()
    finished = page.locator("dt", has_text="Finished").locator("xpath=following-sibling::dd[1]")
    assert finished.inner_text().strip() not in ("", "—")
    bar = page.locator("#progress-sent")
    assert bar.evaluate("b => b.value === b.max") and bar.get_attribute("max") == str(USERS)
    section = page.get_by_role("region", name="Progress").inner_text()
    assert f"Handed to SendGrid: {USERS} of {USERS}" in section
    assert f"{USERS} of {USERS} (100%)" in section
    shot(page, "journey-08-notice-done")
    notice = db.execute(
        "SELECT id, state FROM notices WHERE version_id = %(v)s", {"v": v2["id"]}
    ).fetchone()
    assert notice["state"] == "done"
    states = db.execute(
        "SELECT state, count(*) AS n FROM deliveries WHERE notice_id = %(n)s GROUP BY state",
        {"n": notice["id"]},
    ).fetchall()
    assert [(r["state"], r["n"]) for r in states] == [("sent", USERS)]
    assert fake_sendgrid.wait_idle()
    assert set(fake_sendgrid.recipient_counts()) == {p["email"] for p in people}

    # 6. User A opens the link in their email, in their own browser, and accepts.
    [email] = fake_sendgrid.messages_for(ann["email"])
    assert "Privacy Policy" in email["subject"]
    accept_url = next(v for v in (email["substitutions"] or {}).values() if "/accept/" in v)
    assert re.fullmatch(re.escape(base) + r"/accept/[\w.-]+", accept_url), accept_url
    assert "Hi Ann Archer," in email["substitutions"].values()
    ann_context = browser.new_context()
    ann_errors: list[str] = []
    ann_page = ann_context.new_page()
    ann_page.on("console", lambda m: ann_errors.append(m.text) if m.type == "error" else None)
    ann_page.on("pageerror", lambda e: ann_errors.append(str(e)))
    try:
        ann_page.goto(accept_url)
        ann_page.get_by_role("heading", name="Privacy Policy: version 2").wait_for()
        assert SUMMARY in ann_page.get_by_role("region", name="What changed").inner_text()
        assert ann_page.locator(".redline-wrap ins", has_text="AI model providers").count() >= 1
        shot(ann_page, "journey-09-user-a-email-link")
        ann_page.get_by_role("button", name="I accept").click()
        ann_page.get_by_role("heading", name="Thank you — you accepted").wait_for()
        assert "Privacy Policy version 2: accepted" in ann_page.get_by_role("status").inner_text()
        shot(ann_page, "journey-10-user-a-accepted")
    finally:
        ann_context.close()
    assert ann_errors == []

    # 7. User B accepts in the widget on the demo host page (the admin's pretend product).
    page.get_by_role("link", name="Acceptance").click()
    page.get_by_role("link", name="Demo host page").click()
    page.get_by_label("Signed in as").select_option(ben["external_id"])
    page.get_by_role("button", name="Switch user").click()
    banner = page.get_by_role("region", name="Privacy Policy is changing")
    banner.wait_for()
    assert SUMMARY in banner.inner_text()
    assert page.get_by_role("dialog").count() == 0  # 30 days ahead: a banner, not blocking
    shot(page, "journey-11-user-b-widget")
    banner.get_by_role("button", name="I accept").click()
    page.locator("#host-log li", has_text="accepted: privacy v2").wait_for()
    assert banner.count() == 0
    shot(page, "journey-12-user-b-accepted")

    # 8. User C declines in the same widget.
    page.get_by_label("Signed in as").select_option(cleo["external_id"])
    page.get_by_role("button", name="Switch user").click()
    banner.wait_for()
    banner.get_by_role("button", name="Decline").click()
    page.locator("#host-log li", has_text="declined: privacy v2").wait_for()
    assert banner.count() == 0  # not blocking yet: a decline closes the banner
    shot(page, "journey-13-user-c-declined")

    rows = db.execute(
        """
        SELECT u.external_id, a.decision, a.method, a.delivery_id, a.content_sha256
          FROM acceptances a JOIN users u ON u.id = a.user_id
      ORDER BY a.id
    """
    ).fetchall()
    assert [(r["external_id"], r["decision"], r["method"]) for r in rows] == [
        (ann["external_id"], "accepted", "email_link"),
        (ben["external_id"], "accepted", "click"),
        (cleo["external_id"], "declined", "click"),
    ]
    assert rows[0]["delivery_id"] is not None  # the email link names the delivery it came from
    assert {r["content_sha256"] for r in rows} == {v2["content_sha256"]}

    # 9. The report: 2 accepted, 1 declined, the rest pending.
    page.get_by_role("link", name="Acceptance").click()
    page.get_by_role("link", name="Privacy Policy v2").click()
    page.get_by_role("heading", name="Privacy Policy v2: acceptance").wait_for()
    assert _stat(page, "accepted") == "2"
    assert _stat(page, "implied") == "0"
    assert _stat(page, "declined") == "1"
    assert _stat(page, "pending") == str(USERS - 2)  # a decline is still pending acceptance...
    pending_card = page.locator("[data-count=pending]").inner_text()
    assert "including 1 who declined" in pending_card  # ...and the card says so
    pending_table = page.locator("table", has=page.get_by_role("columnheader", name="Email"))
    pending_text = pending_table.inner_text()
    assert ann["external_id"] not in pending_text and ben["external_id"] not in pending_text
    cleo_row = pending_table.locator("tr", has_text=cleo["external_id"])
    assert cleo_row.locator("td").nth(3).inner_text().strip() != ""  # declined, with its date
    shot(page, "journey-14-report")

    # 10. The evidence CSV, downloaded as the admin would, and `evidence verify` agree.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Evidence (CSV)").click()
    download = download_info.value
    assert download.suggested_filename == f"evidence-version-{v2['id']}.csv"
    exported = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
    assert sorted((r["external_id"], r["decision"], r["method"]) for r in exported) == [
        (ann["external_id"], "accepted", "email_link"),
        (ben["external_id"], "accepted", "click"),
        (cleo["external_id"], "declined", "click"),
    ]
    assert {(r["policy"], r["version"]) for r in exported} == {("privacy", "2")}
    assert {r["content_sha256"] for r in exported} == {v2["content_sha256"]}
    assert {r["email"] for r in exported} == {ann["email"], ben["email"], cleo["email"]}
    assert all(re.fullmatch(r"[0-9a-f]{64}", r["row_hash"]) for r in exported)

    result = app.test_cli_runner().invoke(args=["evidence", "verify"])
    assert result.exit_code == 0, result.output
    assert "Evidence chain OK: 3 rows" in result.output
    # The public page still shows v1 in force and announces v2.
    page.goto(f"{base}/policies/privacy")
    assert "This policy changes on" in page.content()
    shot(page, "journey-15-public-upcoming")
    assert page.console_errors == []
