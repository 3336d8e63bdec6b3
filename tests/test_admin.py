"""The admin UI through the Flask client: sign-in, policies, drafts, preview, publishing."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from helpers import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    POLICY_V1,
    POLICY_V2,
    create_draft,
    create_policy,
    csrf_token,
    publish,
    publish_form,
)


def _versions(db):
    return db.execute("SELECT * FROM policy_versions ORDER BY seq").fetchall()


def _audit(db):
    return [r["action"] for r in db.execute("SELECT action FROM audit_log ORDER BY id")]


def test_pages_need_a_signed_in_admin(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/signin" in response.headers["Location"]


def test_sign_in_with_a_wrong_password_says_so(app, client, admin):
    client.post("/admin/signout", data={"csrf_token": admin["csrf"]})
    response = client.post(
        "/admin/signin",
        data={
            "csrf_token": csrf_token(client),
            "email": ADMIN_EMAIL,
            "password": "wrong password",
        },
    )
    assert response.status_code == 422
    assert "Wrong email or password." in response.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302


def test_sign_in_is_rate_limited(app, client):
    token = csrf_token(client)
    statuses = [
        client.post(
            "/admin/signin",
            data={
                "csrf_token": token,
                "email": "nobody@example.com",
                "password": f"guess-{i}",
            },
        ).status_code
        for i in range(12)
    ]
    assert statuses[:10] == [422] * 10
    assert statuses[10:] == [429, 429]
    assert "Too many requests" in client.post(
        "/admin/signin", data={"csrf_token": token, "email": "x@example.com", "password": "y"}
    ).get_data(as_text=True)


def test_sign_in_redirects_only_to_same_site_paths(app, client):
    from notifier import auth, db

    with app.app_context(), db.connection() as conn:
        auth.create_admin(conn, ADMIN_EMAIL, ADMIN_PASSWORD)
    response = client.post(
        "/admin/signin?next=//evil.example/x",
        data={
            "csrf_token": csrf_token(client),
            "email": ADMIN_EMAIL,
            "password": ADMIN_PASSWORD,
        },
    )
    assert response.headers["Location"] == "/admin/"


def test_session_cookie_is_httponly_and_samesite_lax(app, client, admin):
    cookie = client.get_cookie("session")
    assert cookie.http_only and cookie.same_site == "Lax"


def test_forms_without_a_valid_csrf_token_are_refused(client, admin, db):
    response = client.post(
        "/admin/policies/new",
        data={
            "csrf_token": "forged",
            "slug": "privacy",
            "title": "Privacy",
        },
    )
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    assert db.execute("SELECT count(*) AS n FROM policies").fetchone()["n"] == 0


def test_create_policy_validates_slug_and_refuses_duplicates(client, admin, db):
    bad = client.post(
        "/admin/policies/new",
        data={"csrf_token": admin["csrf"], "slug": "Privacy Policy!", "title": "Privacy"},
    )
    assert bad.status_code == 422
    assert "lower-case letters" in bad.get_data(as_text=True)
    create_policy(client, admin)
    again = client.post(
        "/admin/policies/new",
        data={"csrf_token": admin["csrf"], "slug": "privacy", "title": "Another"},
    )
    assert again.status_code == 422
    assert "already taken" in again.get_data(as_text=True)
    assert [r["title"] for r in db.execute("SELECT title FROM policies")] == ["Privacy Policy"]


def test_live_preview_renders_sanitised_html_and_needs_csrf(client, admin):
    ok = client.post(
        "/admin/preview",
        json={"body_md": "# Hi\n\n<script>x()</script> **bold**"},
        headers={"X-CSRFToken": admin["csrf"]},
    )
    assert ok.status_code == 200
    assert "<strong>bold</strong>" in ok.get_json()["html"]
    assert "<script>" not in ok.get_json()["html"]
    assert client.post("/admin/preview", json={"body_md": "x"}).status_code == 400
    missing = client.post("/admin/preview", json={}, headers={"X-CSRFToken": admin["csrf"]})
    assert missing.status_code == 422


def test_admin_writes_publishes_and_revises_a_policy(client, admin, db):
    policy_id = create_policy(client, admin)
    version_id = create_draft(client, admin, policy_id)
    page = client.get(f"/admin/policies/{policy_id}/versions/{version_id}")
    assert "Publish version 1" in page.get_data(as_text=True)

    response = publish(client, admin, policy_id, version_id, days=10, summary="First version.")
    assert response.status_code == 302
    v1 = _versions(db)[0]
    assert v1["published_at"] is not None and v1["summary"] == "First version."
    assert v1["effective_at"].utcoffset() is not None

    # Version 2 starts from the published text, and the redline shows the edit.
    new = client.get(f"/admin/policies/{policy_id}/versions/new").get_data(as_text=True)
    assert "We keep account data for 30 days" in new
    v2_id = create_draft(client, admin, policy_id, POLICY_V2)
    review = client.get(f"/admin/policies/{policy_id}/versions/{v2_id}").get_data(as_text=True)
    assert re.search(r"<del[^>]*>[^<]*30[^<]*</del>", review)
    assert re.search(r"<ins[^>]*>[^<]*90[^<]*</ins>", review)
    response = publish(client, admin, policy_id, v2_id, days=40, summary="We keep data longer.")
    assert response.status_code == 302, response.get_data(as_text=True)
    assert [v["seq"] for v in _versions(db) if v["published_at"]] == [1, 2]
    assert _audit(db).count("version.published") == 2
    assert {"admin.signed_in", "policy.created", "version.drafted"} <= set(_audit(db))


def test_publish_refuses_past_dates_earlier_dates_and_bad_zones(client, admin, db):
    policy_id = create_policy(client, admin)
    v1 = create_draft(client, admin, policy_id)
    assert publish(client, admin, policy_id, v1, days=20).status_code == 302
    v2 = create_draft(client, admin, policy_id, POLICY_V2)

    past = publish(client, admin, policy_id, v2, days=-1)
    assert past.status_code == 422
    assert "must not be in the past" in past.get_data(as_text=True)
    earlier = publish(client, admin, policy_id, v2, days=5)
    assert earlier.status_code == 422
    assert "on or after version 1" in earlier.get_data(as_text=True)
    in_30_days = datetime.now(ZoneInfo("UTC")) + timedelta(days=30)
    zone = publish(client, admin, policy_id, v2, tz="Mars/Olympus", when=in_30_days)
    assert zone.status_code == 422
    assert "Not an IANA time zone" in zone.get_data(as_text=True)
    no_summary = publish(client, admin, policy_id, v2, days=30, summary="")
    assert no_summary.status_code == 422
    assert _versions(db)[1]["published_at"] is None


def test_effective_time_is_read_in_the_chosen_time_zone(client, admin, db):
    policy_id = create_policy(client, admin)
    v1 = create_draft(client, admin, policy_id)
    when = datetime.now(ZoneInfo("America/New_York")).replace(second=0, microsecond=0) + timedelta(
        days=3
    )
    assert (
        publish(client, admin, policy_id, v1, tz="America/New_York", when=when).status_code == 302
    )
    stored = _versions(db)[0]["effective_at"]
    assert stored == when


def test_publishing_twice_is_a_conflict(client, admin, db):
    policy_id = create_policy(client, admin)
    v1 = create_draft(client, admin, policy_id)
    assert publish(client, admin, policy_id, v1).status_code == 302
    again = client.post(
        f"/admin/policies/{policy_id}/versions/{v1}/publish", data=publish_form(admin)
    )
    assert again.status_code == 409
    assert "already published" in again.get_data(as_text=True)


def test_oversized_or_empty_text_is_refused_with_the_limit(client, admin, db):
    policy_id = create_policy(client, admin)
    big = client.post(
        f"/admin/policies/{policy_id}/versions/new",
        data={"csrf_token": admin["csrf"], "body_md": "a" * 1_000_001},
    )
    assert big.status_code == 413
    assert "1,000,000 bytes" in big.get_data(as_text=True)
    empty = client.post(
        f"/admin/policies/{policy_id}/versions/new",
        data={"csrf_token": admin["csrf"], "body_md": "   "},
    )
    assert empty.status_code == 422
    assert _versions(db) == []


def test_a_published_version_cannot_be_edited_or_discarded(client, admin, db):
    policy_id = create_policy(client, admin)
    v1 = create_draft(client, admin, policy_id)
    publish(client, admin, policy_id, v1)
    edit = client.post(
        f"/admin/policies/{policy_id}/versions/{v1}/edit",
        data={"csrf_token": admin["csrf"], "body_md": "# Changed"},
    )
    assert edit.status_code == 302  # sent back to the read-only page
    discard = client.post(
        f"/admin/policies/{policy_id}/versions/{v1}/discard", data={"csrf_token": admin["csrf"]}
    )
    assert discard.status_code == 409
    assert _versions(db)[0]["body_md"] == POLICY_V1


def test_api_keys_are_shown_once_stored_hashed_and_revocable(client, admin, db):
    page = client.post("/admin/api-keys", data={"csrf_token": admin["csrf"], "name": "CI"})
    key = re.search(r'id="new-key">(pn_[^<]+)<', page.get_data(as_text=True)).group(1)
    row = db.execute("SELECT * FROM api_keys").fetchone()
    assert key not in str(row) and len(row["key_sha256"]) == 64
    assert (
        client.get("/api/v1/policies", headers={"Authorization": f"Bearer {key}"}).status_code
        == 200
    )
    assert key not in client.get("/admin/api-keys").get_data(as_text=True)
    client.post(f"/admin/api-keys/{row['id']}/revoke", data={"csrf_token": admin["csrf"]})
    revoked = client.get("/api/v1/policies", headers={"Authorization": f"Bearer {key}"})
    assert revoked.status_code == 401 and "revoked" in revoked.get_json()["message"]
    assert {"api_key.created", "api_key.revoked"} <= set(_audit(db))


def test_audit_log_page_lists_admin_actions(client, admin):
    create_policy(client, admin)
    page = client.get("/admin/audit").get_data(as_text=True)
    assert "policy.created" in page and "admin.signed_in" in page and ADMIN_EMAIL in page


def test_security_headers_are_set(client):
    response = client.get("/admin/signin")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
