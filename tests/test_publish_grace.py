"""The grace period of an explicit version, set at publish: admin form and JSON API."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta

import pytest
from acceptance_helpers import put_user
from helpers import POLICY_V1, POLICY_V2, backdate, create_draft, create_policy, publish_form


def _grace_rows(db) -> list[dict]:
    return db.execute("SELECT version_id, grace FROM version_grace ORDER BY version_id").fetchall()


def _published_entries(db) -> list[dict]:
    return db.execute(
        "SELECT details FROM audit_log WHERE action = 'version.published' ORDER BY id"
    ).fetchall()


def _post_publish(client, admin, policy_id, version_id, grace_days, **kw):
    data = publish_form(admin, **kw)
    if grace_days is not None:
        data["grace_days"] = grace_days
    return client.post(f"/admin/policies/{policy_id}/versions/{version_id}/publish", data=data)


def test_publish_with_a_grace_period_stores_audits_and_delays_blocking(client, admin, api, db):
    policy_id = create_policy(client, admin)
    version_id = create_draft(client, admin, policy_id)
    response = _post_publish(client, admin, policy_id, version_id, "7", days=30)
    assert response.status_code == 302, response.get_data(as_text=True)

    assert _grace_rows(db) == [{"version_id": version_id, "grace": timedelta(days=7)}]
    [entry] = _published_entries(db)
    assert entry["details"]["grace_days"] == 7
    assert entry["details"]["acceptance_mode"] == "explicit"
    page = html.unescape(client.get(response.headers["Location"]).get_data(as_text=True))
    assert "grace period 7 days" in page

    put_user(api, "u-1")
    [item] = api.get("/api/v1/users/u-1/pending").get_json()["pending"]
    assert item["blocking"] is False and item["in_force"] is False

    backdate(db, version_id, 31)  # effective a day ago: inside the 7 days of grace
    body = api.get("/api/v1/users/u-1/pending").get_json()
    [item] = body["pending"]
    assert item["in_force"] is True
    assert item["blocking"] is False and body["blocking"] is False
    effective_at = datetime.fromisoformat(item["effective_at"])
    assert datetime.fromisoformat(item["blocks_at"]) - effective_at == timedelta(days=7)

    backdate(db, version_id, 7)  # effective eight days ago: the grace is over
    body = api.get("/api/v1/users/u-1/pending").get_json()
    assert body["blocking"] is True and body["pending"][0]["blocking"] is True


@pytest.mark.parametrize(
    ("grace_days", "mode", "message"),
    [
        ("-1", "explicit", "whole number of days from 0 to 365"),
        ("366", "explicit", "whole number of days from 0 to 365"),
        ("abc", "explicit", "whole number of days from 0 to 365"),
        ("1.5", "explicit", "whole number of days from 0 to 365"),
        ("7", "notice", "A grace period applies only to explicit acceptance"),
        ("1", "none", "A grace period applies only to explicit acceptance"),
    ],
)
def test_an_invalid_grace_period_publishes_nothing_and_keeps_the_inputs(
    client, admin, db, grace_days, mode, message
):
    policy_id = create_policy(client, admin)
    version_id = create_draft(client, admin, policy_id)
    response = _post_publish(
        client, admin, policy_id, version_id, grace_days, mode=mode, summary="Kept as typed."
    )
    assert response.status_code == 422
    page = html.unescape(response.get_data(as_text=True))
    assert message in page
    assert "Kept as typed." in page  # the admin's other inputs survive the error
    assert f'value="{grace_days}"' in page
    assert db.execute("SELECT published_at FROM policy_versions").fetchone()["published_at"] is None
    assert _grace_rows(db) == [] and _published_entries(db) == []


def test_no_grace_period_writes_no_row_and_audits_zero(client, admin, db):
    policy_id = create_policy(client, admin)
    version_id = create_draft(client, admin, policy_id)
    assert _post_publish(client, admin, policy_id, version_id, None).status_code == 302
    assert _grace_rows(db) == []
    assert _published_entries(db)[0]["details"]["grace_days"] == 0
    page = html.unescape(
        client.get(f"/admin/policies/{policy_id}/versions/{version_id}").get_data(as_text=True)
    )
    assert "no grace period" in page


def test_zero_grace_is_accepted_with_notice_mode(client, admin, db):
    policy_id = create_policy(client, admin)
    version_id = create_draft(client, admin, policy_id)
    response = _post_publish(client, admin, policy_id, version_id, "0", mode="notice")
    assert response.status_code == 302, response.get_data(as_text=True)
    assert _grace_rows(db) == []


def test_a_publish_refused_after_the_grace_row_was_written_leaves_no_row(client, admin, db):
    """The notice window is checked after the version row and grace row are written: all or none."""
    policy_id = create_policy(client, admin)
    v1 = create_draft(client, admin, policy_id)
    assert _post_publish(client, admin, policy_id, v1, None, days=1).status_code == 302
    v2 = create_draft(client, admin, policy_id, body=POLICY_V2)
    # A material change five days ahead: under the 30 days' notice, and no reason given.
    response = _post_publish(client, admin, policy_id, v2, "7", days=5)
    assert response.status_code == 422
    assert "days' notice" in html.unescape(response.get_data(as_text=True))
    published = db.execute("SELECT published_at FROM policy_versions WHERE id = %s", (v2,))
    assert published.fetchone()["published_at"] is None
    assert _grace_rows(db) == [] and len(_published_entries(db)) == 1


# --- the JSON API -------------------------------------------------------------------------------


def _iso(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


@pytest.fixture
def api_draft(app, api):
    from notifier import db as notifier_db
    from policy_versions import store

    with app.app_context(), notifier_db.connection() as conn:
        store.create_policy(conn, "terms", "Terms of Service")
    created = api.post("/api/v1/policies/terms/versions", json={"body_markdown": POLICY_V1})
    assert created.status_code == 201, created.get_json()
    return "/api/v1/policies/terms/versions/1/publish"


def test_api_publish_takes_grace_days(api, db, api_draft):
    body = {"effective_at": _iso(3), "summary": "First.", "verdict": "material", "grace_days": 7}
    response = api.post(api_draft, json=body)
    assert response.status_code == 200, response.get_json()
    [row] = _grace_rows(db)
    assert row["grace"] == timedelta(days=7)
    assert _published_entries(db)[0]["details"]["grace_days"] == 7


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"grace_days": -1}, "whole number of days from 0 to 365"),
        ({"grace_days": 366}, "whole number of days from 0 to 365"),
        ({"grace_days": "7"}, "whole number of days from 0 to 365"),
        ({"grace_days": 7.5}, "whole number of days from 0 to 365"),
        ({"grace_days": True}, "whole number of days from 0 to 365"),
        ({"grace_days": 7, "acceptance_mode": "notice"}, "applies only to explicit acceptance"),
    ],
)
def test_api_refuses_a_bad_grace_period_with_422_and_publishes_nothing(
    api, db, api_draft, extra, message
):
    body = {"effective_at": _iso(3), "summary": "First.", "verdict": "material"} | extra
    response = api.post(api_draft, json=body)
    assert response.status_code == 422
    error = response.get_json()
    assert message in error["message"] and "grace_days" in error["fields"]
    assert db.execute("SELECT published_at FROM policy_versions").fetchone()["published_at"] is None
    assert _grace_rows(db) == [] and _published_entries(db) == []


def test_api_names_every_problem_when_the_grace_period_is_one_of_them(api, db, api_draft):
    body = {
        "effective_at": _iso(-3),
        "summary": "First.",
        "verdict": "material",
        "acceptance_mode": "none",
        "grace_days": 3,
    }
    response = api.post(api_draft, json=body)
    assert response.status_code == 422
    assert set(response.get_json()["fields"]) == {"effective_at", "grace_days"}
    assert _grace_rows(db) == []


def test_openapi_documents_grace_days_on_the_publish_body(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    grace = spec["components"]["schemas"]["Publish"]["properties"]["grace_days"]
    assert grace["type"] == "integer" and (grace["minimum"], grace["maximum"]) == (0, 365)
