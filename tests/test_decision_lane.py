"""The decision lane (notifier/decisionlane.py) answers exactly as the Flask view would, and hands
everything it does not answer to Flask with the request intact."""

from __future__ import annotations

import io
import json
from urllib.parse import quote

import pytest
from acceptance_helpers import publish_version, put_user

from notifier import acceptances, decisionlane, hostwebhooks, pendingcache

# Every answer field that is not the same for two different decisions.
PER_ROW = ("id", "recorded_at", "row_hash")


@pytest.fixture
def flask_only(app):
    """Serve with the lane switched off: the reference answers."""
    lane = app.wsgi_app
    assert isinstance(lane, decisionlane.DecisionLane)

    class Switch:
        def __enter__(self):
            app.wsgi_app = lane.flask

        def __exit__(self, *exc):
            app.wsgi_app = lane

    return Switch()


@pytest.fixture
def versions(app):
    return {
        "current": publish_version(app),  # privacy v1, in force
        "terms": publish_version(app, slug="terms", title="Terms"),
    }


def _shape(response) -> tuple[int, str, dict]:
    """Status, body text (the fields that differ per row replaced by their names) and headers
    (without the request id; Content-Length checked against the body, then left out)."""
    text = response.get_data(as_text=True)
    body = response.get_json(silent=True)
    if isinstance(body, dict):
        for name in PER_ROW:
            if name in body:
                pair = f'"{name}":{json.dumps(body[name])}'
                assert text.count(pair) == 1, (pair, text)
                text = text.replace(pair, f'"{name}":<per row>')
    headers = dict(response.headers)
    assert int(headers.pop("Content-Length")) == len(response.get_data())
    headers.pop("X-Request-Id", None)
    return response.status_code, text, headers


def test_answers_equal_the_flask_views(app, client, api, api_key, versions, flask_only, db):
    """Each request twice, for two users who are alike: through the lane and through Flask alone.
    Status, body and headers agree, for every success and every kind of error."""
    uid = str(versions["current"].uid)
    for user in ("lane-user", "flask-user"):
        put_user(api, user)
    auth = {"Authorization": f"Bearer {api_key}"}
    good = {"version_uid": uid, "ip": "203.0.113.7", "user_agent": "pytest/1", "locale": "de"}
    cases = [
        ("acceptances", good, auth),
        ("acceptances", good, auth),  # again: 200, the same record
        ("declines", good, auth),
        ("acceptances", good | {"decision": "declined"}, auth),  # 200: declined already
        ("acceptances", {"policy": "terms", "version": 1}, auth),
        ("acceptances", good, {}),  # no key
        ("acceptances", good, {"Authorization": "Bearer pn_wrong"}),
        ("acceptances", good, {"Authorization": "Basic abc"}),
        ("acceptances", {"version_uid": "not-a-uuid"}, auth),
        ("acceptances", {"version_uid": "00000000-0000-4000-8000-000000000000"}, auth),
        ("acceptances", {}, auth),
        ("acceptances", good | {"ip": "300.1.1.1"}, auth),
        ("acceptances", good | {"user_agent": "a\x00b"}, auth),
        ("acceptances", good | {"user_agent": 7}, auth),
        ("acceptances", good | {"delivery_id": 99}, auth),
        ("acceptances", good | {"delivery_id": True}, auth),
        ("acceptances", good | {"decision": "maybe"}, auth),
        ("acceptances", [good], auth),
        ("acceptances", "just text", auth),
    ]
    for route, body, headers in cases:
        answers = []
        for user, lane in (("lane-user", True), ("flask-user", False)):
            path = f"/api/v1/users/{user}/{route}"
            if lane:
                response = client.post(path, json=body, headers=headers)
            else:
                with flask_only:
                    response = client.post(path, json=body, headers=headers)
            answers.append(_shape(response))
        assert answers[0] == answers[1], (route, body, headers)
    # Unknown user, and bodies that are not JSON objects at all: the same on both paths.
    raw_cases = [
        ("/api/v1/users/nobody/acceptances", b'{"version_uid": "%s"}' % uid.encode(), "json"),
        ("/api/v1/users/lane-user/acceptances", b'{"version_uid": ', "json"),
        ("/api/v1/users/lane-user/acceptances", b"\xff\xfe{}", "json"),
        ("/api/v1/users/lane-user/acceptances", b'{"version_uid": "x"}', "text"),
        ("/api/v1/users/erased:x/acceptances", b"{}", "json"),
        ("/api/v1/users/lane-user/acceptances/", b"{}", "json"),
    ]
    for path, data, kind in raw_cases:
        content_type = "application/json" if kind == "json" else "text/plain"
        lane = client.post(path, data=data, headers=auth | {"Content-Type": content_type})
        with flask_only:
            reference = client.post(path, data=data, headers=auth | {"Content-Type": content_type})
        assert _shape(lane) == _shape(reference), path
        assert lane.status_code in (400, 404, 405, 422), lane.get_json()
    rows = db.execute(
        "SELECT u.external_id, p.slug, a.decision, a.locale FROM acceptances a"
        " JOIN users u ON u.id = a.user_id JOIN policy_versions v ON v.id = a.version_id"
        " JOIN policies p ON p.id = v.policy_id ORDER BY 1, 2, 3"
    ).fetchall()
    written = [
        ("privacy", "accepted", "de"),
        ("privacy", "declined", "de"),
        ("terms", "accepted", "en"),  # the user's locale
    ]
    assert [tuple(r.values()) for r in rows] == [
        (user, *row) for user in ("flask-user", "lane-user") for row in written
    ]


def test_the_lane_answers_the_plain_case_and_hands_on_the_rest(app, api, versions, monkeypatch):
    """A well-formed decision never reaches Flask; anything else reaches it with the body intact."""
    put_user(api, "u-1")
    lane = app.wsgi_app
    original, seen = lane.flask, []

    def recording(environ, start_response):
        seen.append((environ["PATH_INFO"], environ["wsgi.input"].read()))
        environ["wsgi.input"].seek(0)
        return original(environ, start_response)

    monkeypatch.setattr(lane, "flask", recording)
    body = {"version_uid": str(versions["current"].uid), "ip": "203.0.113.7"}
    response = api.post("/api/v1/users/u-1/acceptances", json=body)
    assert response.status_code == 201
    assert response.get_json()["method"] == "api"
    assert api.post("/api/v1/users/u-1/acceptances", json=body).status_code == 200
    assert seen == []
    bad = json.dumps(body | {"ip": "nope"}).encode()
    response = api.post("/api/v1/users/u-1/acceptances", data=bad, content_type="application/json")
    assert response.status_code == 422
    assert response.get_json()["fields"] == {"ip": "an IPv4 or IPv6 address"}
    assert seen == [("/api/v1/users/u-1/acceptances", bad)]
    assert api.get("/api/v1/users/u-1/acceptances").status_code == 200
    assert seen[-1] == ("/api/v1/users/u-1/acceptances", b"")


def test_lane_answers_carry_the_app_headers_metrics_and_request_id(app, client, api, versions):
    put_user(api, "u-1")
    body = {"version_uid": str(versions["current"].uid)}
    response = client.post(
        "/api/v1/users/u-1/acceptances", json=body, headers=api.headers | {"X-Request-Id": "req-42"}
    )
    assert response.status_code == 201
    assert response.headers["X-Request-Id"] == "req-42"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in response.headers
    put_user(api, "u-2")
    secure = api.post(
        "/api/v1/users/u-2/acceptances",
        json=body,
        environ_overrides={"wsgi.url_scheme": "https"},
    )
    assert secure.status_code == 201
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert len(secure.headers["X-Request-Id"]) == 32  # a new one when none is sent
    assert _requests_counted(client, "users_api.acceptance_create", 201) >= 2


def test_a_failure_after_the_commit_is_a_500_with_the_decision_kept(api, versions, db, monkeypatch):
    """The decision is recorded before the webhook jobs are queued: a queue failure answers 500
    as the app's handler does, and a retry finds the record (200), never a second row."""
    put_user(api, "u-1")
    body = {"version_uid": str(versions["current"].uid)}

    def broken(events):
        raise ConnectionError("redis is down")

    with monkeypatch.context() as patch:
        patch.setattr(hostwebhooks, "enqueue", broken)
        response = api.post("/api/v1/users/u-1/acceptances", json=body)
    assert response.status_code == 500
    assert response.get_json() == {
        "error": "internal_error",
        "message": "Something went wrong on our side; it is logged.",
        "fields": {},
    }
    assert db.execute("SELECT count(*) AS n FROM acceptances").fetchone()["n"] == 1
    again = api.post("/api/v1/users/u-1/acceptances", json=body)
    assert again.status_code == 200
    assert db.execute("SELECT count(*) AS n FROM acceptances").fetchone()["n"] == 1


def test_ids_are_read_from_the_path_as_flask_reads_them(app, api, versions, monkeypatch):
    """A percent-encoded UTF-8 id is the same user on the lane; a PATH_INFO that is not latin-1
    (no WSGI server sends one) is left to Flask."""
    put_user(api, quote("zoë 1"))
    lane = app.wsgi_app
    original, seen = lane.flask, []

    def recording(environ, start_response):
        seen.append(environ["PATH_INFO"])
        return original(environ, start_response)

    monkeypatch.setattr(lane, "flask", recording)
    body = {"version_uid": str(versions["current"].uid)}
    response = api.post(f"/api/v1/users/{quote('zoë 1')}/acceptances", json=body)
    assert response.status_code == 201
    assert seen == []
    statuses = []
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/users/\u2603/acceptances",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": "2",
        "wsgi.input": io.BytesIO(b"{}"),
    }
    monkeypatch.setattr(lane, "flask", lambda env, start: statuses.append(env["PATH_INFO"]) or [])
    assert list(lane(environ, lambda *a: None)) == []
    assert statuses == ["/api/v1/users/\u2603/acceptances"]


def test_a_version_named_with_text_postgresql_cannot_store_is_not_found(app, api, client, db):
    """A policy slug or version uid with a NUL or an unpaired surrogate names no version: 404
    on the API (lane and Flask alike) and on the widget, not a database error."""
    import time

    from notifier import db as notifier_db
    from notifier import hostkeys

    version = publish_version(app)
    put_user(api, "u-1")
    bodies = [
        {"policy": "\x00", "version": 1},
        {"policy": "priv\ud800", "version": 1},
        {"version_uid": "\x00"},
        {"version_uid": str(version.uid)[:-1] + "\ud800"},
    ]
    with app.app_context(), notifier_db.connection() as conn:
        key_id = conn.execute("SELECT id FROM api_keys LIMIT 1").fetchone()["id"]
        settings = hostkeys.settings(conn, key_id)
    token = hostkeys.widget_token(
        settings["prefix"], settings["widget_secret"], "u-1", int(time.time()) + 600
    )
    widget = {"X-Widget-Token": token, "Content-Type": "application/json"}
    for body in bodies:
        data = json.dumps(body)
        for route in ("acceptances", "declines"):
            response = api.post(
                f"/api/v1/users/u-1/{route}", data=data, content_type="application/json"
            )
            assert response.status_code == 404, (body, response.get_data(as_text=True))
            assert response.get_json()["message"] == "No such policy version."
        data = json.dumps(body | {"decision": "accepted", "prompt_text": "Accept?"})
        response = client.post("/widget/v1/decisions", data=data, headers=widget)
        assert response.status_code == 404, (body, response.get_data(as_text=True))
    assert db.execute("SELECT count(*) AS n FROM acceptances").fetchone()["n"] == 0


# -- GET …/pending ----------------------------------------------------------------------------


def test_pending_answers_equal_the_flask_view(app, api, api_key, versions, flask_only):
    put_user(api, "u-1")
    put_user(api, "ü 2", email="u2@example.com")  # a path to quote, read as Flask reads it
    api.post("/api/v1/users/u-1/acceptances", json={"version_uid": str(versions["terms"].uid)})
    api.get("/api/v1/users/u-1/pending")  # Flask works out this host's base URL first
    for path in (
        "/api/v1/users/u-1/pending",
        f"/api/v1/users/{quote('ü 2')}/pending",
        "/api/v1/users/nobody/pending",
        "/api/v1/users/u-1/pending?x=1",
    ):
        lane = api.get(path)
        with flask_only:
            reference = api.get(path)
        assert _shape(lane) == _shape(reference), path
    unknown_key = {"Authorization": "Bearer pn_" + "0" * 40}
    lane = app.test_client().get("/api/v1/users/u-1/pending", headers=unknown_key)
    with flask_only:
        reference = app.test_client().get("/api/v1/users/u-1/pending", headers=unknown_key)
    assert lane.status_code == 401 and _shape(lane) == _shape(reference)
    assert api.get("/api/v1/users/u-1/pending").get_json()["pending"][0]["policy"] == "privacy"
    assert api.get(f"/api/v1/users/{quote('ü 2')}/pending").get_json()["external_id"] == "ü 2"


def test_the_lane_answers_pending_from_memory_and_hands_on_the_rest(
    app, client, api, versions, monkeypatch
):
    put_user(api, "u-1")
    monkeypatch.setattr(acceptances, "_BASES", {})  # no host's base URL known yet
    lane = app.wsgi_app
    original, seen = lane.flask, []

    def recording(environ, start_response):
        seen.append((environ["PATH_INFO"], environ.get("QUERY_STRING", "")))
        return original(environ, start_response)

    monkeypatch.setattr(lane, "flask", recording)
    assert api.get("/api/v1/users/u-1/pending").status_code == 200
    assert seen == [("/api/v1/users/u-1/pending", "")]  # the first: Flask learns the base URL
    for _ in range(3):
        response = client.get(
            "/api/v1/users/u-1/pending", headers=api.headers | {"X-Request-Id": "r7"}
        )
        assert response.status_code == 200 and response.headers["X-Request-Id"] == "r7"
        assert response.headers["Cache-Control"] == "no-store"
    assert len(seen) == 1
    # The 401/404 that pendingcache.answer raises are rendered here, as the app's handler does
    # (an unknown user is read from the database once, not again by Flask); a missing key, a
    # query string, another host are Flask's.
    loads = pendingcache.for_app(app).stats["loads"]
    assert api.get("/api/v1/users/nobody/pending").status_code == 404
    assert pendingcache.for_app(app).stats["loads"] == loads + 1
    assert app.test_client().get("/api/v1/users/u-1/pending").status_code == 401
    bad_key = {"Authorization": "Bearer not-a-key"}
    assert app.test_client().get("/api/v1/users/u-1/pending", headers=bad_key).status_code == 401
    assert api.get("/api/v1/users/u-1/pending?a=%00").status_code == 422
    other_host = api.get("/api/v1/users/u-1/pending", base_url="http://other.example")
    assert other_host.status_code == 200
    assert other_host.get_json()["pending"][0]["links"]["accept"].startswith(
        "http://other.example/"
    )
    assert [path for path, _ in seen[1:]] == ["/api/v1/users/u-1/pending"] * 3
    assert _requests_counted(app.test_client(), "users_api.pending", 200) >= 5
    assert _requests_counted(app.test_client(), "users_api.pending", 404) >= 1


def _requests_counted(client, endpoint: str, status: int) -> float:
    """`notifier_http_requests_total` for one endpoint and status, from `/metrics`."""
    metrics = client.get("/metrics").get_data(as_text=True)
    line = next(
        line
        for line in metrics.splitlines()
        if line.startswith("notifier_http_requests_total{")
        and f'endpoint="{endpoint}"' in line
        and f'status="{status}"' in line
    )
    return float(line.rsplit(" ", 1)[1])


def test_the_lane_no_op_answers_as_the_view_does(app, client, monkeypatch):
    seen = []
    lane = app.wsgi_app
    original = lane.flask

    def recording(environ, start_response):
        seen.append(environ.get("QUERY_STRING"))
        return original(environ, start_response)

    monkeypatch.setattr(lane, "flask", recording)
    for path in ("/api/v1/noop?lane=1", "/api/v1/noop?lane=1&db=0&u=bench-7"):
        answered = client.get(path)
        app.wsgi_app = original  # the view's answer
        reference = client.get(path)
        app.wsgi_app = lane
        assert _shape(answered) == _shape(reference) and answered.get_json() == {"ok": True}
    assert seen == []
    assert client.get("/api/v1/noop?lane=1&db=1").status_code == 200  # a query: Flask's
    assert client.get("/api/v1/noop?lane=2").status_code == 422
    assert seen == ["lane=1&db=1", "lane=2"]
