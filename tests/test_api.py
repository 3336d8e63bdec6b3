"""The JSON API: API-key auth, reading policies, drafting and publishing from CI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from helpers import POLICY_V1, POLICY_V2


def _iso(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def _make_policy(app):
    from notifier import db
    from policy_versions import store

    with app.app_context(), db.connection() as conn:
        store.create_policy(conn, "terms", "Terms of Service")


def test_api_needs_a_valid_key(client, app, api_key):
    missing = client.get("/api/v1/policies")
    assert missing.status_code == 401
    assert missing.get_json()["error"] == "unauthorized"
    wrong = client.get("/api/v1/policies", headers={"Authorization": "Bearer pn_x_nope"})
    assert wrong.status_code == 401 and "not valid" in wrong.get_json()["message"]
    basic = client.get("/api/v1/policies", headers={"Authorization": f"Basic {api_key}"})
    assert basic.status_code == 401


def test_ci_drafts_and_publishes_a_version(app, api, db):
    _make_policy(app)
    created = api.post("/api/v1/policies/terms/versions", json={"body_markdown": POLICY_V1})
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["number"] == 1 and created.get_json()["status"] == "draft"
    published = api.post(
        "/api/v1/policies/terms/versions/1/publish",
        json={"effective_at": _iso(3), "summary": "First version.", "verdict": "material"},
    )
    assert published.status_code == 200, published.get_json()
    body = published.get_json()
    assert body["status"] == "published" and body["url"].endswith("/policies/terms/versions/1")
    row = db.execute("SELECT * FROM policy_versions").fetchone()
    assert row["published_at"] is not None and row["content_sha256"] == body["content_sha256"]
    actors = [r["actor"] for r in db.execute("SELECT actor FROM audit_log")]
    assert actors and all(a.startswith("api-key:tests") for a in actors)

    show = api.get("/api/v1/policies/terms").get_json()
    assert show["in_force"] is None and show["upcoming"]["number"] == 1
    assert api.get("/api/v1/policies").get_json()["policies"][0]["slug"] == "terms"
    version = api.get("/api/v1/policies/terms/versions/1").get_json()
    assert version["body_markdown"] == POLICY_V1


def test_publishing_again_is_409_and_changes_nothing(app, api, db):
    _make_policy(app)
    api.post("/api/v1/policies/terms/versions", json={"body_markdown": POLICY_V1})
    payload = {"effective_at": _iso(3), "summary": "First.", "verdict": "minor"}
    assert api.post("/api/v1/policies/terms/versions/1/publish", json=payload).status_code == 200
    again = api.post(
        "/api/v1/policies/terms/versions/1/publish", json={**payload, "summary": "Changed"}
    )
    assert again.status_code == 409
    assert again.get_json()["error"] == "conflict"
    assert db.execute("SELECT summary FROM policy_versions").fetchone()["summary"] == "First."


def test_publish_rejects_naive_unparsable_and_past_dates(app, api, db):
    _make_policy(app)
    api.post("/api/v1/policies/terms/versions", json={"body_markdown": POLICY_V1})
    url = "/api/v1/policies/terms/versions/1/publish"
    naive = api.post(
        url, json={"effective_at": "2031-01-01T00:00:00", "summary": "x", "verdict": "minor"}
    )
    assert naive.status_code == 422
    assert naive.get_json()["fields"] == {"effective_at": "must be ISO 8601 with a time zone"}
    garbage = api.post(
        url, json={"effective_at": "next tuesday", "summary": "x", "verdict": "minor"}
    )
    assert garbage.status_code == 422 and "ISO 8601" in garbage.get_json()["message"]
    past = api.post(url, json={"effective_at": _iso(-2), "summary": "x", "verdict": "minor"})
    assert past.status_code == 422
    assert past.get_json()["fields"]["effective_at"] == "must not be in the past"
    no_summary = api.post(url, json={"effective_at": _iso(2), "summary": " ", "verdict": "minor"})
    assert no_summary.status_code == 422 and "summary" in no_summary.get_json()["fields"]
    bad_verdict = api.post(url, json={"effective_at": _iso(2), "summary": "x", "verdict": "huge"})
    assert bad_verdict.status_code == 422 and "verdict" in bad_verdict.get_json()["fields"]
    assert db.execute("SELECT published_at FROM policy_versions").fetchone()["published_at"] is None


def test_new_version_cannot_take_effect_before_the_last_one(app, api):
    _make_policy(app)
    api.post("/api/v1/policies/terms/versions", json={"body_markdown": POLICY_V1})
    api.post(
        "/api/v1/policies/terms/versions/1/publish",
        json={"effective_at": _iso(20), "summary": "x", "verdict": "material"},
    )
    api.post("/api/v1/policies/terms/versions", json={"body_markdown": POLICY_V2})
    early = api.post(
        "/api/v1/policies/terms/versions/2/publish",
        json={"effective_at": _iso(10), "summary": "y", "verdict": "material"},
    )
    assert early.status_code == 422
    assert "on or after version 1" in early.get_json()["fields"]["effective_at"]


def test_bad_bodies_get_clear_4xx(app, api, client, api_key, db):
    _make_policy(app)
    url = "/api/v1/policies/terms/versions"
    assert (
        api.post("/api/v1/policies/nope/versions", json={"body_markdown": "x"}).status_code == 404
    )
    not_json = client.post(
        url,
        data="body_markdown=x",
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "text/plain"},
    )
    assert not_json.status_code == 422 and "JSON" in not_json.get_json()["message"]
    broken = client.post(
        url,
        data="{oops",
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
    )
    assert broken.status_code == 422
    not_utf8 = client.post(
        url,
        data=b'{"body_markdown": "\xff\xfe"}',
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
    )
    assert not_utf8.status_code == 422 and "UTF-8" in not_utf8.get_json()["message"]
    assert api.post(url, json=["a list"]).status_code == 422
    assert api.post(url, json={"body_markdown": 42}).get_json()["fields"] == {
        "body_markdown": "must be a string"
    }
    empty = api.post(url, json={"body_markdown": ""})
    assert empty.status_code == 422
    huge = api.post(url, json={"body_markdown": "a" * 1_000_001})
    assert huge.status_code == 413
    assert "1,000,000 bytes" in huge.get_json()["message"]
    nul = api.post(url, json={"body_markdown": "Hello\x00world"})
    assert nul.status_code == 422 and "control characters" in nul.get_json()["message"]
    assert db.execute("SELECT count(*) AS n FROM policy_versions").fetchone()["n"] == 0


def test_a_second_draft_is_a_conflict_and_drafts_can_be_updated(app, api):
    _make_policy(app)
    api.post("/api/v1/policies/terms/versions", json={"body_markdown": POLICY_V1})
    second = api.post("/api/v1/policies/terms/versions", json={"body_markdown": POLICY_V2})
    assert second.status_code == 409 and "open draft" in second.get_json()["message"]
    updated = api.put("/api/v1/policies/terms/versions/1", json={"body_markdown": POLICY_V2})
    assert updated.status_code == 200 and "90 days" in updated.get_json()["body_markdown"]


def test_unknown_routes_under_api_answer_json(api):
    response = api.get("/api/v1/nothing-here")
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"


def test_json_nested_too_deeply_is_a_4xx_on_every_endpoint(app, api, client, api_key):
    """'[[[[…' deeper than the parser's recursion limit is invalid JSON like any other: every
    POST/PUT route (API, widget, webhooks, the decision lane) answers 4xx, never 500."""
    import re

    from acceptance_helpers import publish_version, put_user

    publish_version(app)
    put_user(api, "u-1")
    bodies = (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000)
    values = {"slug": "privacy", "seq": "1", "external_id": "u-1"}
    routes = [
        (method, re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values.get(m.group(1), "1"), rule.rule))
        for rule in app.url_map.iter_rules()
        for method in sorted(rule.methods & {"POST", "PUT"})
        # The SendGrid webhook checks its signature before it parses (test_webhooks.py).
        if not rule.rule.startswith(("/admin", "/webhooks/")) and "<path:" not in rule.rule
    ]
    assert ("POST", "/api/v1/users/u-1/acceptances") in routes and len(routes) >= 10
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    for method, path in routes:
        for body in bodies:
            response = client.open(path, method=method, data=body, headers=headers)
            assert response.status_code < 500, (method, path, response.get_data(as_text=True))
    # A widget token whose payload is nested too deeply is malformed (401), not a crash.
    from uuid import uuid4

    from notifier.hostkeys import _b64

    payloads = (
        b"[" * 100_000 + b"]" * 100_000,
        b'{"k": "a", "sub": "b", "exp": 1e999}',  # infinity: int() overflows
        b'{"k": "a", "sub": "b", "exp": "NaN"}',
        b'{"k": null, "sub": 1, "exp": 1}',
        b"null",
    )
    for payload in payloads:
        token = _b64(payload) + "." + _b64(b"mac")
        for path in ("/widget/v1/activity", "/widget/v1/decisions"):
            headers = {"X-Widget-Token": token, "Accept": "application/json"}
            body = {"decision": "accepted", "version_uid": str(uuid4()), "prompt_text": "Accept?"}
            response = client.post(path, json=body, headers=headers)
            assert response.status_code == 401, (payload[:40], response.get_data(as_text=True))
            assert response.get_json()["message"] == "The widget token is malformed."


def test_no_get_route_answers_500_to_hostile_ids_or_query_strings(app, api, client, api_key, admin):
    """Every GET route (signed in as admin, with an API key), with ids past PostgreSQL's bigint,
    negative or zero, and query strings holding huge numbers or NUL characters: 4xx or a page,
    never a 500 and never an error inside a streamed download."""
    import re

    from acceptance_helpers import publish_version, put_user

    publish_version(app)
    put_user(api, "u-1")
    big = "99999999999999999999"
    values = {"slug": "privacy", "external_id": "u-1"}
    numbers = ("", f"?after={big}", f"?before={big}", f"?against={big}", "?after=-5")
    nuls = ("?q=%00", "?segment=%00", "?view=%00", "?state=%00", "?user=%00", "?a%00=1")
    queries = numbers + nuls
    headers = {"Authorization": f"Bearer {api_key}"}
    checked = 0
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or "<path:" in rule.rule or rule.rule.startswith("/static"):
            continue
        for filler in (big, "9223372036854775807", "0", "1"):
            path = re.sub(
                r"<(\w+):(\w+)>",
                lambda m, f=filler: f if m.group(1) == "int" else values.get(m.group(2), "x"),
                rule.rule,
            )
            path = re.sub(r"<(\w+)>", lambda m: values.get(m.group(1), "x"), path)
            for query in queries:
                response = client.get(path + query, headers=headers)
                response.get_data()  # a streamed download fails here, if anywhere
                response.close()
                assert response.status_code < 500, (path + query, response.status_code)
                checked += 1
    assert checked > 500
    # What the answers say: a NUL is named, an id past bigint is not found.
    response = client.get("/admin/reports/users?q=a%00b")
    assert response.status_code == 422 and "NUL" in response.get_data(as_text=True)
    assert client.get(f"/admin/reports/versions/{big}/evidence.csv").status_code == 404
    assert client.get("/admin/reports/versions/999/pending.csv").status_code == 404
    # Routing itself stops at bigint: such an id never reaches a query.
    import pytest
    from werkzeug.exceptions import NotFound

    urls = app.url_map.bind("localhost")
    assert urls.match("/admin/reports/versions/9223372036854775807")[1] == {"version_id": 2**63 - 1}
    with pytest.raises(NotFound):
        urls.match("/admin/reports/versions/9223372036854775808")


def test_a_form_field_with_a_nul_is_a_422_before_it_reaches_the_database(admin, client, db):
    response = client.post(
        "/admin/policies/new",
        data={"csrf_token": admin["csrf"], "slug": "cookies", "title": "Cookie\x00 Policy"},
    )
    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    assert "NUL" in response.get_data(as_text=True)
    assert db.execute("SELECT count(*) AS n FROM policies").fetchone()["n"] == 0
