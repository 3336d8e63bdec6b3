"""GDPR: export everything about a user; erase personal data, keep pseudonymous evidence."""

from __future__ import annotations

from acceptance_helpers import accept, publish_version, put_user


def test_export_contains_profile_and_evidence(app, api):
    version = publish_version(app)
    put_user(api, "u-1", segment="team")
    accept(api, "u-1", version)
    data = api.get("/api/v1/users/u-1/export").get_json()
    assert data["user"]["email"] == "u-1@example.com" and data["user"]["segment"] == "team"
    [record] = data["acceptances"]
    assert record["ip"] == "203.0.113.7" and record["content_sha256"] == version.content_sha256


def test_erase_removes_personal_data_and_the_chain_still_verifies(app, api, client, db):
    version = publish_version(app)
    put_user(api, "u-1", segment="team")
    put_user(api, "u-2")
    accept(api, "u-1", version)
    accept(api, "u-2", version)
    response = client.delete("/api/v1/users/u-1", headers=api.headers)
    assert response.status_code == 200
    subject = response.get_json()["subject_key"]
    user = db.execute("SELECT * FROM users WHERE external_id LIKE 'erased:%%'").fetchone()
    assert user["email"] is None and user["name"] == "" and user["segment"] is None
    assert "u-1" not in str(user)
    assert db.execute("SELECT count(*) AS n FROM acceptance_context").fetchone()["n"] == 1
    row = db.execute(
        "SELECT * FROM acceptances WHERE user_id = %(id)s", {"id": user["id"]}
    ).fetchone()
    assert row["subject_key"] == subject
    result = app.test_cli_runner().invoke(args=["evidence", "verify"])
    assert result.exit_code == 0, result.output
    assert api.get("/api/v1/users/u-1").status_code == 404
    audit = db.execute("SELECT * FROM audit_log WHERE action = 'user.erased'").fetchone()
    assert "u-1" not in str(audit)
    # The same external id can come back: a new row, the same pseudonym in new evidence.
    assert api.put("/api/v1/users/u-1", json={"name": "Back"}).status_code == 201
    assert accept(api, "u-1", version).status_code == 201
    keys = {r["subject_key"] for r in db.execute("SELECT subject_key FROM acceptances")}
    assert subject in keys and len(keys) == 2


def test_admin_can_erase_from_the_user_page(app, api, admin, client, db):
    put_user(api, "u-1")
    user_id = db.execute("SELECT id FROM users").fetchone()["id"]
    response = client.post(
        f"/admin/reports/users/{user_id}/erase",
        data={"csrf_token": admin["csrf"], "confirm": "nope"},
    )
    assert response.status_code == 302
    assert db.execute("SELECT erased_at FROM users").fetchone()["erased_at"] is None
    client.post(
        f"/admin/reports/users/{user_id}/erase",
        data={"csrf_token": admin["csrf"], "confirm": "erase"},
    )
    assert db.execute("SELECT erased_at FROM users").fetchone()["erased_at"] is not None
    export = client.get(f"/admin/reports/users/{user_id}/export.json").get_json()
    assert export["user"]["email"] is None
