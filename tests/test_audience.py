"""The audience API: upsert, bulk with per-row errors, scoped keys, limits."""

from __future__ import annotations

from acceptance_helpers import put_user


def test_put_creates_then_updates_keeping_fields_not_sent(api, db):
    response = api.put(
        "/api/v1/users/u-1",
        json={"email": "a@example.com", "name": "Ann", "segment": "team", "tags": ["beta"]},
    )
    assert response.status_code == 201
    response = api.put("/api/v1/users/u-1", json={"name": "Ann B."})
    assert response.status_code == 200
    row = db.execute("SELECT * FROM users WHERE external_id = 'u-1'").fetchone()
    assert (row["email"], row["name"], row["segment"], row["tags"]) == (
        "a@example.com",
        "Ann B.",
        "team",
        ["beta"],
    )


def test_put_with_bad_fields_is_422_naming_each_field(api, db):
    response = api.put("/api/v1/users/u-1", json={"email": "nope", "locale": "!!", "x": 1})
    assert response.status_code == 422
    assert set(response.get_json()["fields"]) == {"email", "locale", "x"}
    assert db.execute("SELECT count(*) AS n FROM users").fetchone()["n"] == 0


def test_delete_of_unknown_user_is_404(api, client):
    response = client.delete("/api/v1/users/ghost", headers=api.headers)
    assert response.status_code == 404


def test_bulk_is_all_or_nothing_with_per_row_errors(api, db):
    users = [{"external_id": f"b-{i}", "email": f"b{i}@example.com"} for i in range(5)]
    users[2]["email"] = "broken"
    users[4]["external_id"] = "b-0"  # duplicate of row 1
    response = api.post("/api/v1/users/bulk", json={"users": users})
    assert response.status_code == 422
    body = response.get_json()
    assert body["written"] is False and "Nothing was imported" in body["summary"]
    assert [(e["line"], e["field"]) for e in body["errors"]] == [(3, "email"), (5, "external_id")]
    assert db.execute("SELECT count(*) AS n FROM users").fetchone()["n"] == 0

    response = api.post("/api/v1/users/bulk", json={"users": users, "partial": True})
    assert response.status_code == 200
    body = response.get_json()
    assert (body["created"], body["updated"], body["error_count"]) == (3, 0, 2)
    assert db.execute("SELECT count(*) AS n FROM users").fetchone()["n"] == 3


def test_bulk_updates_existing_users_and_counts_them(api, db):
    put_user(api, "b-1", name="Old")
    users = [{"external_id": "b-1", "name": "New"}, {"external_id": "b-2"}]
    body = api.post("/api/v1/users/bulk", json={"users": users}).get_json()
    assert (body["created"], body["updated"]) == (1, 1)
    assert db.execute("SELECT name, email FROM users WHERE external_id='b-1'").fetchone() == {
        "name": "New",
        "email": "b-1@example.com",
    }


def test_bulk_over_ten_thousand_users_is_413(api, db):
    users = [{"external_id": f"x{i}"} for i in range(10_001)]
    response = api.post("/api/v1/users/bulk", json={"users": users})
    assert response.status_code == 413
    assert response.get_json()["error"] == "payload_too_large"
    assert db.execute("SELECT count(*) AS n FROM users").fetchone()["n"] == 0


def test_bulk_of_ten_thousand_users_is_written(api, db):
    users = [{"external_id": f"x{i}", "email": f"x{i}@example.com"} for i in range(10_000)]
    response = api.post("/api/v1/users/bulk", json={"users": users})
    assert response.status_code == 200 and response.get_json()["created"] == 10_000


def test_missing_or_bad_api_key_is_401(client):
    assert client.get("/api/v1/users/u-1/pending").status_code == 401
    response = client.get("/api/v1/users/u-1", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401


def test_scoped_keys_cannot_see_each_others_users(app, client, api, db):
    from notifier import auth, hostkeys
    from notifier import db as notifier_db

    with app.app_context(), notifier_db.connection() as conn:
        rows = []
        for name in ("host-a", "host-b"):
            row, key = auth.create_api_key(conn, name, None)
            hostkeys.update_settings(conn, row["id"], scoped=True, origins=[], webhook_url=None)
            rows.append({"Authorization": f"Bearer {key}"})
    a, b = rows
    assert client.put("/api/v1/users/shared-id", json={"name": "A"}, headers=a).status_code == 201
    assert client.get("/api/v1/users/shared-id", headers=b).status_code == 404
    assert client.get("/api/v1/users/shared-id/pending", headers=b).status_code == 404
    assert client.put("/api/v1/users/shared-id", json={"name": "B"}, headers=b).status_code == 404
    assert client.delete("/api/v1/users/shared-id", headers=b).status_code == 404
    bulk = client.post(
        "/api/v1/users/bulk", json={"users": [{"external_id": "shared-id"}]}, headers=b
    )
    assert bulk.status_code == 422
    assert bulk.get_json()["errors"][0]["message"] == "not available to this API key"
    assert db.execute("SELECT name FROM users").fetchone()["name"] == "A"
    # The unscoped key (the `api` fixture) sees everyone.
    assert api.get("/api/v1/users/shared-id").status_code == 200


def test_text_postgresql_cannot_store_is_a_422_naming_the_field(api, db):
    """A NUL or other control character, or an unpaired surrogate (JSON can carry "\\ud800",
    UTF-8 cannot), in any text field of a user: 422 with the field, nothing written."""
    import json

    cases = {
        "tags": {"email": "a@example.com", "tags": ["ok", "a\x00b"]},
        "name": {"email": "a@example.com", "name": "Ann \ud800"},
        "segment": {"email": "a@example.com", "segment": "x\x07"},
        "email": {"email": "a\ud800@example.com"},
    }
    for field, body in cases.items():
        response = api.put(
            "/api/v1/users/u-1", data=json.dumps(body), content_type="application/json"
        )
        assert response.status_code == 422, (field, response.get_data(as_text=True))
        assert field in response.get_json()["fields"], field
    tags = {"email": "a@example.com", "tags": ["\ud800"]}
    bulk = api.post("/api/v1/users/bulk", json={"users": [{"external_id": "u-2", **tags}]})
    assert bulk.status_code == 422
    bulk = api.post("/api/v1/users/bulk", json={"users": [{"external_id": "u-\ud800"}]})
    assert bulk.status_code == 422
    assert db.execute("SELECT count(*) AS n FROM users").fetchone()["n"] == 0
