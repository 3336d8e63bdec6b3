"""Pending prompts and decisions through the API: idempotency, modes, conflicts, implied."""

from __future__ import annotations

import helpers
import pytest
from acceptance_helpers import accept, publish_version, put_user


def test_pending_lists_the_version_in_force_as_blocking_with_links(app, api):
    version = publish_version(app, effective_in_days=-5)
    put_user(api, "u-1")
    body = api.get("/api/v1/users/u-1/pending").get_json()
    assert body["blocking"] is True
    [item] = body["pending"]
    assert item["policy"] == "privacy" and item["version"] == version.seq
    assert item["blocking"] is True and item["mode"] == "explicit" and item["in_force"] is True
    assert item["summary"] == "Summary of privacy changes."
    assert item["links"]["redline"].endswith("/policies/privacy/versions/1/changes")
    assert item["links"]["accept"].endswith("/api/v1/users/u-1/acceptances")


def test_upcoming_version_is_a_dismissible_banner_then_blocks_after_grace(app, api, db):
    version = publish_version(app, effective_in_days=3)
    put_user(api, "u-1")
    [item] = api.get("/api/v1/users/u-1/pending").get_json()["pending"]
    assert item["blocking"] is False and item["in_force"] is False
    helpers.backdate(db, version.id, 4)
    assert api.get("/api/v1/users/u-1/pending").get_json()["pending"][0]["blocking"] is True
    db.execute(
        "INSERT INTO version_grace (version_id, grace) VALUES (%(v)s, interval '7 days')",
        {"v": version.id},
    )
    [item] = api.get("/api/v1/users/u-1/pending").get_json()["pending"]
    assert item["blocking"] is False and item["blocks_at"] > item["effective_at"]


def test_accepting_twice_returns_the_same_record_and_one_row(app, api, db):
    version = publish_version(app)
    put_user(api, "u-1")
    first = accept(api, "u-1", version)
    assert first.status_code == 201, first.get_json()
    second = accept(api, "u-1", version)
    assert second.status_code == 200
    assert second.get_json()["id"] == first.get_json()["id"]
    rows = db.execute("SELECT * FROM acceptances").fetchall()
    assert len(rows) == 1
    assert rows[0]["method"] == "api" and rows[0]["content_sha256"] == version.content_sha256
    ctx = db.execute("SELECT host(ip) AS ip, user_agent FROM acceptance_context").fetchone()
    assert ctx == {"ip": "203.0.113.7", "user_agent": "pytest/1"}
    assert api.get("/api/v1/users/u-1/pending").get_json()["pending"] == []


def test_declines_are_recorded_once_and_visible_in_history_and_pending(app, api):
    version = publish_version(app, effective_in_days=5)
    put_user(api, "u-1")
    path = "/api/v1/users/u-1/declines"
    body = {"policy": "privacy", "version": 1}
    assert api.post(path, json=body).status_code == 201
    assert api.post(path, json=body).status_code == 200
    history = api.get("/api/v1/users/u-1/acceptances").get_json()["acceptances"]
    assert [h["decision"] for h in history] == ["declined"]
    [item] = api.get("/api/v1/users/u-1/pending").get_json()["pending"]
    assert item["declined_at"] is not None
    assert accept(api, "u-1", version).status_code == 201  # changing one's mind is allowed


def test_accepting_a_superseded_version_is_a_conflict(app, api):
    old = publish_version(app, effective_in_days=-20)
    publish_version(app, effective_in_days=-2, body=helpers.POLICY_V2)
    put_user(api, "u-1")
    response = accept(api, "u-1", old)
    assert response.status_code == 409
    assert "superseded" in response.get_json()["message"]


def test_accepting_a_draft_is_a_conflict(app, api, db):
    from notifier import db as notifier_db
    from policy_versions import store

    put_user(api, "u-1")
    with app.app_context(), notifier_db.connection() as conn:
        policy = store.create_policy(conn, "terms", "Terms")
        draft = store.create_draft(
            conn, policy.id, helpers.POLICY_V1, created_by=None, max_bytes=10**6
        )
    response = accept(api, "u-1", draft)
    assert response.status_code == 409 and "draft" in response.get_json()["message"]
    assert db.execute("SELECT count(*) AS n FROM acceptances").fetchone()["n"] == 0


def test_unknown_user_or_version_is_404_and_missing_fields_422(app, api):
    version = publish_version(app)
    assert accept(api, "nobody", version).status_code == 404
    put_user(api, "u-1")
    response = api.post("/api/v1/users/u-1/acceptances", json={"version_uid": "0" * 32})
    assert response.status_code == 404
    response = api.post("/api/v1/users/u-1/acceptances", json={"ip": "1.2.3.4"})
    assert response.status_code == 422 and "version_uid" in response.get_json()["fields"]
    response = accept(api, "u-1", version, ip="not-an-ip")
    assert response.status_code == 422 and response.get_json()["fields"] == {
        "ip": "an IPv4 or IPv6 address"
    }
    assert api.get("/api/v1/users/nobody/pending").status_code == 404


def test_activity_implies_acceptance_of_non_material_notice_versions(app, api, db):
    publish_version(app, mode="notice", verdict="minor", effective_in_days=-1)
    publish_version(
        app, slug="terms", title="Terms", mode="notice", verdict="material", effective_in_days=-1
    )
    put_user(api, "u-1")
    pending = api.get("/api/v1/users/u-1/pending").get_json()
    assert {i["policy"]: i["blocking"] for i in pending["pending"]} == {
        "privacy": False,
        "terms": False,
    }
    body = api.post("/api/v1/users/u-1/activity", json={}).get_json()
    assert [(a["policy"], a["method"]) for a in body["implied"]] == [("privacy", "implied")]
    assert [r["policy"] for r in body["not_implied"]] == ["terms"]
    assert "not recorded as delivered" in body["not_implied"][0]["reason"]
    again = api.post("/api/v1/users/u-1/activity", json={}).get_json()
    assert again["implied"] == []
    assert db.execute("SELECT count(*) AS n FROM acceptances").fetchone()["n"] == 1
    prompt = db.execute("SELECT prompt_text FROM acceptances").fetchone()["prompt_text"]
    assert prompt.startswith("Notice of our Privacy Policy (effective ")  # version 1: no "update"
    # An update to it: the notice says so.
    publish_version(
        app, mode="notice", verdict="minor", effective_in_days=0, body=helpers.POLICY_V2
    )
    body = api.post("/api/v1/users/u-1/activity", json={}).get_json()
    assert [(a["policy"], a["version"]) for a in body["implied"]] == [("privacy", 2)]
    prompt = db.execute("SELECT prompt_text FROM acceptances ORDER BY id DESC").fetchone()
    assert prompt["prompt_text"].startswith("Notice of the update to our Privacy Policy")


def test_material_notice_version_is_implied_once_the_notice_email_is_delivered(app, api, db):
    version = publish_version(app, mode="notice", verdict="material", effective_in_days=-1)
    put_user(api, "u-1")
    user_id = db.execute("SELECT id FROM users").fetchone()["id"]
    notice_id = db.execute(
        """
        INSERT INTO notices (version_id, email, in_app, state)
        VALUES (%(v)s, true, true, 'done') RETURNING id
    """,
        {"v": version.id},
    ).fetchone()["id"]
    delivery = db.execute(
        """
        INSERT INTO deliveries (notice_id, user_id, batch_no, state)
        VALUES (%(n)s, %(u)s, 0, 'sent') RETURNING id
    """,
        {"n": notice_id, "u": user_id},
    ).fetchone()["id"]
    body = api.post("/api/v1/users/u-1/activity", json={}).get_json()
    assert body["implied"] == [] and body["not_implied"][0]["policy"] == "privacy"
    db.execute("UPDATE deliveries SET state = 'delivered' WHERE id = %(id)s", {"id": delivery})
    body = api.post("/api/v1/users/u-1/activity", json={}).get_json()
    [implied] = body["implied"]
    assert (implied["method"], implied["delivery_id"]) == ("implied", delivery)


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/api/v1/users/{id}"),
        ("GET", "/api/v1/users/{id}/pending"),
        ("GET", "/api/v1/users/{id}/acceptances"),
        ("POST", "/api/v1/users/{id}/acceptances"),
        ("POST", "/api/v1/users/{id}/declines"),
        ("POST", "/api/v1/users/{id}/activity"),
        ("GET", "/api/v1/users/{id}/export"),
        ("DELETE", "/api/v1/users/{id}"),
    ],
)
def test_an_id_no_user_can_have_is_a_404_not_a_500(app, api, client, method, path):
    """A NUL reached PostgreSQL, which refuses it in text: every user endpoint answered 500."""
    publish_version(app)
    for bad in ("a%00b", "tab%09", "x" * 201):
        response = client.open(
            path.format(id=bad), method=method, headers=api.headers, json={"version_uid": "x"}
        )
        assert response.status_code == 404, (bad, response.get_json())
        assert "No user with the external id" in response.get_json()["message"]
    put = api.put("/api/v1/users/a%00b", json={"email": "a@example.com"})
    assert put.status_code == 422 and "external_id" in put.get_json()["fields"]
