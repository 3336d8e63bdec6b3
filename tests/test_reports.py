"""Admin reports: counts, chart, pending list, exports, CSV import, key settings."""

from __future__ import annotations

from acceptance_helpers import accept, publish_version, put_user


def test_exports_per_version_csv_and_per_user_json(app, api, admin, client, db):
    version = publish_version(app)
    put_user(api, "u-1")
    accept(api, "u-1", version, prompt_text="Accept the new policy?")
    user_id = db.execute("SELECT id FROM users").fetchone()["id"]
    csv_text = client.get(f"/admin/reports/versions/{version.id}/evidence.csv").get_data(
        as_text=True
    )
    header, line = csv_text.splitlines()[:2]
    assert header.startswith("id,recorded_at,decision,method,external_id,subject_key")
    assert ",accepted,api,u-1," in line and "203.0.113.7" in line and version.content_sha256 in line
    data = client.get(f"/admin/reports/users/{user_id}/evidence.json").get_json()
    assert data["acceptances"][0]["prompt_text"] == "Accept the new policy?"
    page = client.get(f"/admin/reports/users/{user_id}/evidence").get_data(as_text=True)
    assert "Accept the new policy?" in page and version.content_sha256 in page


def _upload(client, admin, content: bytes, partial=False):
    import io

    data = {"csrf_token": admin["csrf"], "file": (io.BytesIO(content), "users.csv")}
    if partial:
        data["partial"] = "1"
    return client.post("/admin/host/import", data=data, content_type="multipart/form-data")


def test_version_report_counts_rates_segments_and_pending_filter(app, api, admin, client):
    version = publish_version(app)
    put_user(api, "u-1", segment="team")
    put_user(api, "u-2", segment="enterprise", name="Zed Zulu")
    put_user(api, "u-3", segment="enterprise")
    accept(api, "u-1", version)
    api.post("/api/v1/users/u-2/declines", json={"version_uid": str(version.uid)})
    page = client.get(f"/admin/reports/versions/{version.id}").get_data(as_text=True)
    assert '<polyline class="line"' in page and "style=" not in page
    assert "33.3% of 3 users" in page  # accepted 1 of 3
    filtered = client.get(f"/admin/reports/versions/{version.id}?segment=enterprise&q=zulu")
    text = filtered.get_data(as_text=True)
    assert "u-2" in text and "u-3" not in text.split("Pending users")[1]
    csv_text = client.get(
        f"/admin/reports/versions/{version.id}/pending.csv?segment=enterprise"
    ).get_data(as_text=True)
    assert [line.split(",")[0] for line in csv_text.splitlines()] == ["external_id", "u-2", "u-3"]
    index = client.get("/admin/reports/").get_data(as_text=True)
    assert "Privacy Policy v1" in index


def test_a_superseded_version_has_no_pending_users(app, api, admin, client, db):
    """Once a later version is in force, users are asked about that one: the earlier version's
    report says so instead of calling everyone who never accepted it "pending"."""
    import helpers

    first = publish_version(app, effective_in_days=-100)
    put_user(api, "u-1")
    put_user(api, "u-2")
    accept(api, "u-1", first)
    upcoming = publish_version(app, effective_in_days=10, body=helpers.POLICY_V2)
    index = client.get("/admin/reports/").get_data(as_text=True)
    assert "superseded" not in index  # version 2 is not in force yet: v1 still asks
    first_row = index.split("Privacy Policy v1")[1].split("</tr>")[0]
    assert "1 <span" in first_row.split("<td>")[-1]  # u-2 is pending
    helpers.backdate(db, upcoming.id, 11)
    index = client.get("/admin/reports/").get_data(as_text=True)
    first_row = index.split("Privacy Policy v1")[1].split("</tr>")[0]
    assert "superseded by v2 on" in first_row
    second_row = index.split("Privacy Policy v2")[1].split("</tr>")[0]
    assert "2 <span" in second_row.split("<td>")[-1]  # both are asked about v2
    page = client.get(f"/admin/reports/versions/{first.id}").get_data(as_text=True)
    assert "Superseded by version 2" in page and "Users who did not accept it" in page
    assert "Pending users" not in page and "Save grace period" not in page
    assert "u-2" in page.split("Users who did not accept it")[1]
    page = client.get(f"/admin/reports/versions/{upcoming.id}").get_data(as_text=True)
    assert "Superseded" not in page and "Pending users" in page


def test_reports_need_an_admin(client):
    assert client.get("/admin/reports/").status_code == 302


def test_csv_import_creates_and_updates_and_reports(api, admin, client, db):
    put_user(api, "c-1", name="Old")
    content = b"external_id,email,name,segment\nc-1,c1@example.com,New,team\nc-2,,Two,\n"
    response = _upload(client, admin, content)
    assert response.status_code == 200
    assert "Imported 2 of 2 rows (1 created, 1 updated)" in response.get_data(as_text=True)
    assert db.execute("SELECT name FROM users WHERE external_id='c-1'").fetchone()["name"] == "New"


def test_csv_with_bad_rows_is_all_or_nothing_unless_partial(admin, client, db):
    content = b"external_id,email\nc-1,ok@example.com\nc-2,not-an-email\nc-3\nc-1,dup@example.com\n"
    response = _upload(client, admin, content)
    text = response.get_data(as_text=True)
    assert response.status_code == 422 and "Nothing was imported: 3 of 4 rows" in text
    for fragment in (
        "<td>3</td>",
        "not a valid email address",
        "expected 2 fields, found 1",
        "duplicate of line 2",
    ):
        assert fragment in text
    assert db.execute("SELECT count(*) AS n FROM users").fetchone()["n"] == 0
    response = _upload(client, admin, content, partial=True)
    assert "Imported 1 of 4 rows" in response.get_data(as_text=True)
    assert db.execute("SELECT count(*) AS n FROM users").fetchone()["n"] == 1


def test_csv_wrong_columns_or_encoding_imports_nothing(admin, client, db):
    response = _upload(client, admin, b"id,mail\n1,a@example.com\n")
    text = response.get_data(as_text=True)
    assert response.status_code == 422 and "the column external_id is missing" in text
    assert "unknown column(s) &#39;id&#39;, &#39;mail&#39;" in text
    latin1 = "external_id,name\nc-1,Ok\nc-2,Zoë\n".encode("latin-1")
    text = _upload(client, admin, latin1).get_data(as_text=True)
    assert "line 3 is not valid UTF-8" in text and "Nothing was imported" in text
    assert db.execute("SELECT count(*) AS n FROM users").fetchone()["n"] == 0


def test_key_settings_page_validates_origins(app, admin, client, api_key, db):
    key_id = db.execute("SELECT id FROM api_keys").fetchone()["id"]
    response = client.post(
        f"/admin/host/keys/{key_id}",
        data={"csrf_token": admin["csrf"], "allowed_origins": "not a url", "webhook_url": ""},
    )
    assert response.status_code == 422
    response = client.post(
        f"/admin/host/keys/{key_id}",
        data={
            "csrf_token": admin["csrf"],
            "allowed_origins": "https://App.example.com/\n",
            "scoped": "1",
            "webhook_url": "https://hooks.example.com/pn",
        },
    )
    assert response.status_code == 302
    row = db.execute("SELECT * FROM api_key_settings").fetchone()
    assert row["allowed_origins"] == ["https://app.example.com"] and row["scoped"] is True
