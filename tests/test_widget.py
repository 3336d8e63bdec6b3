"""Widget endpoints: HMAC user tokens, CORS for listed origins only, click evidence."""

from __future__ import annotations

import time

from acceptance_helpers import publish_version, put_user


def _host_key(app, origins=("https://app.example.com",)):
    from notifier import auth, hostkeys
    from notifier import db as notifier_db

    with app.app_context(), notifier_db.connection() as conn:
        row, key = auth.create_api_key(conn, "host", None)
        settings = hostkeys.update_settings(
            conn, row["id"], scoped=False, origins=list(origins), webhook_url=None
        )
    return settings


def _token(settings, external_id="u-1", expires_in=600):
    from notifier import hostkeys

    return hostkeys.widget_token(
        settings["prefix"], settings["widget_secret"], external_id, int(time.time()) + expires_in
    )


def _post(client, path, token, origin="https://app.example.com", json=None):
    headers = {"X-Widget-Token": token, "Accept": "application/json"}
    if origin:
        headers["Origin"] = origin
    return client.post(path, json=json or {}, headers=headers)


def test_widget_js_is_small_plain_javascript(client):
    response = client.get("/widget.js")
    try:
        assert response.status_code == 200
        assert response.mimetype in ("text/javascript", "application/javascript")
        assert len(response.data) < 15 * 1024
        assert b"role" in response.data and b"aria-modal" in response.data
    finally:
        response.close()


def test_activity_returns_pending_with_cors_for_a_listed_origin(app, client, api):
    publish_version(app, effective_in_days=-3)
    put_user(api, "u-1")
    settings = _host_key(app)
    response = _post(client, "/widget/v1/activity", _token(settings))
    assert response.status_code == 200, response.get_json()
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    [item] = response.get_json()["pending"]
    assert item["blocking"] is True


def test_unlisted_origin_is_refused_without_cors_headers(app, client, api):
    publish_version(app)
    put_user(api, "u-1")
    settings = _host_key(app)
    response = _post(client, "/widget/v1/activity", _token(settings), origin="https://evil.example")
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = client.options(
        "/widget/v1/decisions",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 403
    preflight = client.options(
        "/widget/v1/decisions",
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert "X-Widget-Token" in preflight.headers["Access-Control-Allow-Headers"]


def test_expired_tampered_or_overlong_tokens_are_401(app, client, api):
    put_user(api, "u-1")
    settings = _host_key(app)
    for token in (
        _token(settings, expires_in=-5),
        _token(settings, expires_in=3 * 24 * 3600),
        _token(settings)[:-3] + "AAA",
        _token(settings, external_id="u-2").split(".")[0] + "." + _token(settings).split(".")[1],
        "garbage",
    ):
        assert _post(client, "/widget/v1/activity", token).status_code == 401


def test_click_decision_records_evidence_with_the_prompt_shown(app, client, api, db):
    version = publish_version(app)
    put_user(api, "u-1", locale="fr")
    settings = _host_key(app)
    body = {"version_uid": str(version.uid), "decision": "accepted", "prompt_text": "Accept?"}
    response = client.post(
        "/widget/v1/decisions",
        json=body,
        headers={
            "X-Widget-Token": _token(settings),
            "Origin": "https://app.example.com",
            "User-Agent": "Widget-Test/1.0",
        },
    )
    assert response.status_code == 201, response.get_json()
    row = db.execute("SELECT * FROM acceptances").fetchone()
    assert (row["method"], row["prompt_text"], row["locale"]) == ("click", "Accept?", "fr")
    ctx = db.execute("SELECT user_agent FROM acceptance_context").fetchone()
    assert ctx["user_agent"] == "Widget-Test/1.0"
    missing = _post(
        client,
        "/widget/v1/decisions",
        _token(settings),
        json={"version_uid": str(version.uid), "decision": "accepted"},
    )
    assert missing.status_code == 422 and "prompt_text" in missing.get_json()["fields"]


def test_demo_host_page_needs_an_admin_and_embeds_a_token(client, admin, api):
    put_user(api, "u-1")
    page = client.get("/demo/host?user=u-1").get_data(as_text=True)
    assert 'data-token="' in page and "/widget.js" in page


def test_demo_host_page_redirects_anonymous_visitors(client):
    assert client.get("/demo/host").status_code == 302
