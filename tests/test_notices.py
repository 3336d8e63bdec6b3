"""Notices end to end: publish → fan-out → SendGrid (the fake) → ledger, through UI and API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from helpers import POLICY_V1, POLICY_V2, create_draft, create_policy, publish

from notifier.tokens import read_acceptance_token


def add_users(db, n: int, start: int = 1, locale: str = "en") -> None:
    db.execute(
        """
        INSERT INTO users (external_id, email, name, locale)
        SELECT 'u-' || i, 'user' || i || '@example.com', 'User ' || i, %(locale)s
          FROM generate_series(%(start)s::int, %(end)s::int) AS i
    """,
        {"start": start, "end": start + n - 1, "locale": locale},
    )


def notice_of(db, version_id: int, kind: str = "notice") -> dict:
    return db.execute(
        "SELECT * FROM notices WHERE version_id = %(v)s AND kind = %(k)s",
        {"v": version_id, "k": kind},
    ).fetchone()


def finished(db, notice_id: int):
    def check() -> bool:
        row = db.execute("SELECT state FROM notices WHERE id = %(id)s", {"id": notice_id})
        return row.fetchone()["state"] in ("done", "cancelled")

    return check


def published_v1(client, admin, days: int = 40, **kw) -> tuple[int, int]:
    policy_id = create_policy(client, admin)
    v1 = create_draft(client, admin, policy_id)
    response = publish(client, admin, policy_id, v1, days=days, summary="First version.", **kw)
    assert response.status_code == 302, response.get_data(as_text=True)
    return policy_id, v1


def test_a_notice_to_5000_users_reaches_each_exactly_once_and_the_ledger_agrees(
    client, admin, db, fake_sendgrid, run_jobs
):
    add_users(db, 5000)
    _, v1 = published_v1(client, admin)
    notice = notice_of(db, v1)
    assert notice["email"] and notice["state"] == "queued"

    run_jobs(until=finished(db, notice["id"]))

    counts = fake_sendgrid.recipient_counts()
    assert len(counts) == 5000 and set(counts.values()) == {1}
    assert fake_sendgrid.stats()["accepted_requests"] == 5  # 1,000 recipients per request
    rows = db.execute(
        "SELECT state, email, sg_message_id FROM deliveries WHERE notice_id = %(n)s",
        {"n": notice["id"]},
    ).fetchall()
    assert len(rows) == 5000 and {r["state"] for r in rows} == {"sent"}
    accepted = {
        m["message_id"]: {p["to"][0]["email"] for p in m["payload"]["personalizations"]}
        for m in fake_sendgrid.accepted
    }
    assert all(r["email"] in accepted[r["sg_message_id"]] for r in rows)
    assert db.execute("SELECT state FROM notices").fetchone()["state"] == "done"


def test_the_email_carries_summary_links_ids_and_a_signed_accept_link(
    app, client, admin, db, fake_sendgrid, run_jobs
):
    add_users(db, 1)
    policy_id, v1 = published_v1(client, admin)
    run_jobs(until=finished(db, notice_of(db, v1)["id"]))
    v2 = create_draft(client, admin, policy_id, POLICY_V2)
    assert (
        publish(client, admin, policy_id, v2, days=45, summary="We keep data longer.").status_code
        == 302
    )
    notice = notice_of(db, v2)
    run_jobs(until=finished(db, notice["id"]))

    message = fake_sendgrid.messages_for("user1@example.com")[-1]
    delivery = db.execute(
        "SELECT id, user_id FROM deliveries WHERE notice_id = %(n)s", {"n": notice["id"]}
    ).fetchone()
    assert message["to"] == [{"email": "user1@example.com", "name": "User 1"}]
    assert "Privacy Policy" in message["subject"]
    assert [c["type"] for c in message["content"]] == ["text/plain", "text/html"]
    text, html = (c["value"] for c in message["content"])
    assert "We keep data longer." in text and "We keep data longer." in html
    assert "/policies/privacy/versions/2/changes" in text
    assert "<style" not in html and 'style="' in html  # CSS inlined
    assert message["custom_args"] == {
        "notice_id": str(notice["id"]),
        "delivery_id": str(delivery["id"]),
    }
    assert message["categories"] == [f"policy-notice-{notice['id']}"]
    subs = message["substitutions"]
    assert subs["-greeting-"] == "Hi User 1,"
    token = subs["-accept_url-"].rsplit("/accept/", 1)[1]
    with app.test_request_context():
        assert read_acceptance_token(token) == {
            "user_id": delivery["user_id"],
            "version_id": v2,
            "delivery_id": delivery["id"],
        }


def test_the_publish_api_returns_the_notice_and_the_notice_api_its_counts(
    app, api, db, fake_sendgrid, run_jobs
):
    from notifier import db as pool
    from policy_versions import store

    with app.app_context(), pool.connection() as conn:
        store.create_policy(conn, "terms", "Terms of Service")
    add_users(db, 30)
    api.post("/api/v1/policies/terms/versions", json={"body_markdown": POLICY_V1})
    effective = (datetime.now(UTC) + timedelta(days=40)).isoformat()
    response = api.post(
        "/api/v1/policies/terms/versions/1/publish",
        json={"effective_at": effective, "summary": "First.", "verdict": "material"},
    )
    assert response.status_code == 200, response.get_json()
    notice = response.get_json()["notice"]
    assert notice["recipient_count"] == 30 and notice["email"] is True
    run_jobs(until=finished(db, notice["id"]))
    body = api.get(f"/api/v1/notices/{notice['id']}").get_json()
    assert body["state"] == "done"
    assert {k: body["counts"][k] for k in ("total", "pending", "sent", "failed", "duplicates")} == {
        "total": 30,
        "pending": 0,
        "sent": 30,
        "failed": 0,
        "duplicates": 0,
    }
    assert api.get("/api/v1/notices/999").status_code == 404
    assert app.test_client().get(f"/api/v1/notices/{notice['id']}").status_code == 401


def test_a_material_change_with_3_days_notice_needs_an_override_reason(client, admin, db):
    add_users(db, 3)
    policy_id, v1 = published_v1(client, admin, days=1)
    v2 = create_draft(client, admin, policy_id, POLICY_V2)
    before = db.execute("SELECT count(*) AS n FROM audit_log").fetchone()["n"]

    refused = publish(client, admin, policy_id, v2, days=3, verdict="material")
    assert refused.status_code == 422
    assert "at least 30 days after the notice goes out (3 given)" in refused.get_data(
        as_text=True
    ), refused.get_data(as_text=True)[-1500:]
    version = db.execute("SELECT published_at FROM policy_versions WHERE id = %(id)s", {"id": v2})
    assert version.fetchone()["published_at"] is None
    assert notice_of(db, v2) is None
    assert db.execute("SELECT count(*) AS n FROM audit_log").fetchone()["n"] == before

    form = {"window_override_reason": "Required by a court order effective next week."}
    response = client.post(
        f"/admin/policies/{policy_id}/versions/{v2}/publish",
        data={**_form(admin, days=3), **form},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    notice = notice_of(db, v2)
    assert notice["window_override_reason"] == form["window_override_reason"]
    entry = db.execute(
        "SELECT details FROM audit_log WHERE action = 'notice.created' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert entry["details"]["window_override_reason"] == form["window_override_reason"]
    assert entry["details"]["notice_days"] == 3


def _form(admin, **kw) -> dict:
    from helpers import publish_form

    return publish_form(admin, **kw)


def test_the_api_refuses_a_short_window_too_and_changes_nothing(app, api, db):
    from notifier import db as pool
    from policy_versions import store

    with app.app_context(), pool.connection() as conn:
        store.create_policy(conn, "terms", "Terms of Service")
    api.post("/api/v1/policies/terms/versions", json={"body_markdown": POLICY_V1})
    soon = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    later = (datetime.now(UTC) + timedelta(days=4)).isoformat()
    api.post(
        "/api/v1/policies/terms/versions/1/publish",
        json={"effective_at": soon, "summary": "First.", "verdict": "material"},
    )
    api.post("/api/v1/policies/terms/versions", json={"body_markdown": POLICY_V2})
    response = api.post(
        "/api/v1/policies/terms/versions/2/publish",
        json={"effective_at": later, "summary": "Longer.", "verdict": "material"},
    )
    assert response.status_code == 422
    assert set(response.get_json()["fields"]) == {"effective_at", "window_override_reason"}
    assert db.execute("SELECT count(*) AS n FROM notices").fetchone()["n"] == 1
    again = api.post(
        "/api/v1/policies/terms/versions/2/publish",
        json={
            "effective_at": later,
            "summary": "Longer.",
            "verdict": "material",
            "window_override_reason": "Legal obligation.",
        },
    )
    assert again.status_code == 200 and again.get_json()["notice"]["state"] == "queued"


def test_minor_changes_are_in_app_only_unless_the_admin_adds_email_and_cosmetic_sends_nothing(
    client, admin, db
):
    add_users(db, 2)
    policy_id, _ = published_v1(client, admin)
    v2 = create_draft(client, admin, policy_id, POLICY_V2)
    assert (
        publish(
            client, admin, policy_id, v2, days=40, verdict="minor", override_reason="x"
        ).status_code
        == 302
    )
    notice = notice_of(db, v2)
    assert (notice["email"], notice["in_app"], notice["state"]) == (False, True, "done")

    v3 = create_draft(client, admin, policy_id, POLICY_V2 + "\nMore.\n")
    data = {**_form(admin, days=50, verdict="minor", override_reason="x"), "send_email": "yes"}
    assert (
        client.post(f"/admin/policies/{policy_id}/versions/{v3}/publish", data=data).status_code
        == 302
    )
    assert notice_of(db, v3)["email"] is True

    v4 = create_draft(client, admin, policy_id, POLICY_V2 + "\nMore!\n")
    assert (
        publish(
            client, admin, policy_id, v4, days=60, verdict="cosmetic", override_reason="x"
        ).status_code
        == 302
    )
    assert notice_of(db, v4) is None


def test_publishing_twice_and_fanning_out_twice_notify_nobody_twice(
    app, client, admin, db, fake_sendgrid, run_jobs
):
    add_users(db, 50)
    policy_id, v1 = published_v1(client, admin)
    again = publish(client, admin, policy_id, v1, days=40)
    assert again.status_code == 409
    notice = notice_of(db, v1)
    run_jobs(until=finished(db, notice["id"]))
    from notifier import jobs

    with app.app_context():
        db.execute("UPDATE notices SET state = 'sending' WHERE id = %(id)s", {"id": notice["id"]})
        assert jobs.fan_out_notice(notice["id"]) == 0  # nothing new to write
    run_jobs()
    assert fake_sendgrid.stats()["recipients"] == 50
    assert db.execute("SELECT count(*) AS n FROM deliveries").fetchone()["n"] == 50


def test_pause_resume_cancel_and_a_finished_notice_cannot_be_cancelled(
    client, admin, db, fake_sendgrid, run_jobs
):
    add_users(db, 20)
    _, v1 = published_v1(client, admin)
    notice = notice_of(db, v1)
    base = f"/admin/notices/{notice['id']}"
    assert client.post(f"{base}/pause", data={"csrf_token": admin["csrf"]}).status_code == 302
    run_jobs()
    assert fake_sendgrid.stats()["requests"] == 0  # paused before the fan-out: nothing sent
    assert client.post(f"{base}/pause", data={"csrf_token": admin["csrf"]}).status_code == 409
    assert client.post(f"{base}/resume", data={"csrf_token": admin["csrf"]}).status_code == 302
    run_jobs(until=finished(db, notice["id"]))
    assert fake_sendgrid.stats()["recipients"] == 20

    audit_before = db.execute("SELECT count(*) AS n FROM audit_log").fetchone()["n"]
    refused = client.post(
        f"{base}/cancel", data={"csrf_token": admin["csrf"]}, headers={"Accept": "application/json"}
    )
    assert refused.status_code == 409
    assert "done" in refused.get_json()["message"]
    assert db.execute("SELECT state FROM notices").fetchone()["state"] == "done"
    assert db.execute("SELECT count(*) AS n FROM audit_log").fetchone()["n"] == audit_before


def test_cancel_stops_what_has_not_been_sent(client, admin, db, fake_sendgrid, run_jobs):
    add_users(db, 20)
    _, v1 = published_v1(client, admin)
    notice = notice_of(db, v1)
    response = client.post(
        f"/admin/notices/{notice['id']}/cancel", data={"csrf_token": admin["csrf"]}
    )
    assert response.status_code == 302
    run_jobs()
    assert fake_sendgrid.stats()["requests"] == 0
    assert db.execute("SELECT state FROM notices").fetchone()["state"] == "cancelled"


def test_a_scheduled_notice_waits_and_send_now_sends_it(client, admin, db, fake_sendgrid, run_jobs):
    add_users(db, 5)
    policy_id = create_policy(client, admin)
    v1 = create_draft(client, admin, policy_id)
    when = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    data = {**_form(admin, days=40, tz="UTC"), "notice_at": when}
    assert (
        client.post(f"/admin/policies/{policy_id}/versions/{v1}/publish", data=data).status_code
        == 302
    )
    notice = notice_of(db, v1)
    assert notice["state"] == "scheduled"
    page = client.get(f"/admin/notices/{notice['id']}").get_data(as_text=True)
    assert "5 users with a deliverable address" in page
    run_jobs()
    assert fake_sendgrid.stats()["requests"] == 0
    client.post(f"/admin/notices/{notice['id']}/send-now", data={"csrf_token": admin["csrf"]})
    run_jobs(until=finished(db, notice["id"]))
    assert fake_sendgrid.stats()["recipients"] == 5


def test_without_an_api_key_emails_go_to_the_outbox_shown_in_the_admin(client, admin, db, run_jobs):
    add_users(db, 3)
    _, v1 = published_v1(client, admin)
    notice = notice_of(db, v1)
    run_jobs(until=finished(db, notice["id"]))
    rows = db.execute("SELECT * FROM outbox ORDER BY id").fetchall()
    assert [r["to_email"] for r in rows] == [f"user{i}@example.com" for i in (1, 2, 3)]
    assert "Hi User 1," in rows[0]["text_body"] and "/accept/" in rows[0]["html_body"]
    assert "-accept_url-" not in rows[0]["html_body"]
    assert (
        client.post(
            f"/admin/notices/{notice['id']}/test", data={"csrf_token": admin["csrf"]}
        ).status_code
        == 302
    )
    test_mail = db.execute("SELECT * FROM outbox WHERE is_test").fetchone()
    assert test_mail["to_email"] == admin["email"] and test_mail["subject"].startswith("[Test]")
    listing = client.get("/admin/notices/outbox").get_data(as_text=True)
    assert "user1@example.com" in listing
    shown = client.get(f"/admin/notices/outbox/{rows[0]['id']}")
    assert shown.status_code == 200 and "Hi User 1," in shown.get_data(as_text=True)
    html = client.get(f"/admin/notices/outbox/{rows[0]['id']}.html")
    assert "sandbox" in html.headers["Content-Security-Policy"]


def test_admin_pages_show_progress_recipients_and_history(
    client, admin, db, fake_sendgrid, run_jobs
):
    add_users(db, 12)
    _, v1 = published_v1(client, admin)
    notice = notice_of(db, v1)
    run_jobs(until=finished(db, notice["id"]))
    page = client.get(f"/admin/notices/{notice['id']}").get_data(as_text=True)
    assert "<progress" in page and "notices.js" in page and "<script>" not in page
    progress = client.get(f"/admin/notices/{notice['id']}/progress.json").get_json()
    assert progress["state"] == "done" and progress["counts"]["sent"] == 12
    listing = client.get(f"/admin/notices/{notice['id']}/recipients?q=user3@example.com")
    assert "user3@example.com" in listing.get_data(as_text=True)
    delivery = db.execute("SELECT id FROM deliveries ORDER BY id LIMIT 1").fetchone()["id"]
    history = client.get(f"/admin/notices/deliveries/{delivery}").get_data(as_text=True)
    assert "sent" in history and "Send attempts" in history
    assert "Notices" in client.get("/admin/notices/").get_data(as_text=True)


def test_users_created_during_the_window_get_the_notice_too(
    app, client, admin, db, fake_sendgrid, run_jobs
):
    from notifier import jobs

    add_users(db, 10)
    _, v1 = published_v1(client, admin)
    notice = notice_of(db, v1)
    run_jobs(until=finished(db, notice["id"]))
    add_users(db, 3, start=11)
    with app.app_context():
        jobs.sweep_notices()
    run_jobs(until=finished(db, notice["id"]))
    counts = fake_sendgrid.recipient_counts()
    assert len(counts) == 13 and set(counts.values()) == {1}


def test_reminders_go_once_to_users_who_have_not_accepted(
    app, client, admin, db, fake_sendgrid, run_jobs
):
    from notifier import jobs

    app.config["REMINDER_DAYS_BEFORE"] = "7,1"
    add_users(db, 6)
    policy_id, v1 = published_v1(client, admin)
    run_jobs(until=finished(db, notice_of(db, v1)["id"]))
    v2 = create_draft(client, admin, policy_id, POLICY_V2)
    data = {**_form(admin, days=45), "window_override_reason": "unused"}
    assert (
        client.post(f"/admin/policies/{policy_id}/versions/{v2}/publish", data=data).status_code
        == 302
    )
    notice = notice_of(db, v2)
    run_jobs(until=finished(db, notice["id"]))
    # Fast-forward: the version takes effect in 3 days and the notice went out 40 days ago.
    db.execute("ALTER TABLE policy_versions DISABLE TRIGGER policy_versions_guard")
    db.execute(
        "UPDATE policy_versions SET effective_at = now() + interval '3 days' WHERE id = %(id)s",
        {"id": v2},
    )
    db.execute("ALTER TABLE policy_versions ENABLE TRIGGER policy_versions_guard")
    db.execute("UPDATE deliveries SET sent_at = sent_at - interval '40 days'")
    accepted_user = _accept(db, "u-1", v2)
    fake_sendgrid.reset()

    with app.app_context():
        jobs.sweep_notices()
        jobs.sweep_notices()  # a second sweep creates nothing more
    reminders = db.execute("SELECT * FROM notices WHERE kind = 'reminder'").fetchall()
    assert [r["reminder_days"] for r in reminders] == [7]
    run_jobs(until=finished(db, reminders[0]["id"]))
    counts = fake_sendgrid.recipient_counts()
    expected = 5 if accepted_user else 6
    assert len(counts) == expected and set(counts.values()) == {1}
    if accepted_user:
        assert "user1@example.com" not in counts
    message = fake_sendgrid.messages_for("user2@example.com")[0]
    assert message["subject"].startswith("Reminder:")


def _accept(db, external_id: str, version_id: int) -> bool:
    """Record an acceptance row when the acceptances table exists (issue 5's migration)."""
    if not db.execute("SELECT to_regclass('acceptances') IS NOT NULL AS ok").fetchone()["ok"]:
        return False
    hexes = "0" * 64
    db.execute(
        """
        INSERT INTO acceptances (chain, user_id, subject_key, version_id, content_sha256,
                                 decision, method, recorded_at, context_sha256, prev_hash, row_hash)
        SELECT 0, u.id, %(h)s, %(v)s, %(h)s, 'accepted', 'click', now(), %(h)s, %(h)s, %(h)s
          FROM users u
         WHERE u.external_id = %(e)s
    """,
        {"h": hexes, "v": version_id, "e": external_id},
    )
    return True


def test_undeliverable_addresses_are_listed_skipped_and_resettable(
    client, admin, db, fake_sendgrid, run_jobs
):
    add_users(db, 4)
    db.execute(
        """
        UPDATE users SET email_undeliverable_at = now(), email_undeliverable_reason = 'bounce: 550'
         WHERE external_id = 'u-2'
    """
    )
    page = client.get("/admin/notices/undeliverable").get_data(as_text=True)
    assert "user2@example.com" in page and "bounce: 550" in page
    _, v1 = published_v1(client, admin)
    run_jobs(until=finished(db, notice_of(db, v1)["id"]))
    assert "user2@example.com" not in fake_sendgrid.recipient_counts()
    user_id = db.execute("SELECT id FROM users WHERE external_id = 'u-2'").fetchone()["id"]
    reset = client.post(
        f"/admin/notices/undeliverable/{user_id}/reset", data={"csrf_token": admin["csrf"]}
    )
    assert reset.status_code == 302
    row = db.execute("SELECT email_undeliverable_at FROM users WHERE id = %(id)s", {"id": user_id})
    assert row.fetchone()["email_undeliverable_at"] is None
