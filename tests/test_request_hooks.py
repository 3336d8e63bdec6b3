"""The per-request hooks stay cheap for API calls without dropping logging, metrics or limits."""

from __future__ import annotations

import logging

from flask import Flask
from helpers import csrf_token

from notifier import security
from notifier.observability import _CHILDREN


def test_api_requests_skip_the_limiter_check_but_sign_in_is_still_limited(app, client, monkeypatch):
    calls = []
    real = security.limiter._check_request_limit

    def spy(*args, **kwargs):
        calls.append(kwargs.get("in_middleware", True))
        return real(*args, **kwargs)

    monkeypatch.setattr(security.limiter, "_check_request_limit", spy)
    assert client.get("/api/v1/noop").status_code == 200
    assert client.get("/healthz").status_code == 200
    assert calls == []  # no default/application/blueprint limits: nothing to check app-wide

    token = csrf_token(client)
    statuses = [
        client.post(
            "/admin/signin",
            data={"csrf_token": token, "email": "nobody@example.com", "password": f"g{i}"},
        ).status_code
        for i in range(11)
    ]
    assert statuses[-1] == 429
    assert False in calls  # the route's own decorator did the checking


def test_the_app_wide_limiter_check_runs_again_once_any_app_wide_limit_exists(monkeypatch):
    manager = security.limiter.limit_manager
    assert not security._limits_outside_decorators()
    monkeypatch.setattr(manager, "_blueprint_limits", {"api": ["10/minute"]})
    assert security._limits_outside_decorators()
    monkeypatch.setattr(manager, "_blueprint_limits", {})
    monkeypatch.delattr(security.limiter, "_meta_limits")
    assert security._limits_outside_decorators()  # unknown internals: check, never skip


def test_only_flask_limiters_hook_is_replaced(app):
    hooks = app.before_request_funcs[None]
    assert security._check_request_limit in hooks
    assert security.limiter._check_request_limit not in hooks


def test_session_without_cookie_is_empty_and_with_cookie_is_read(app):
    interface = app.session_interface
    assert isinstance(interface, security.SessionInterface)
    with app.test_request_context("/"):
        from flask import request

        assert dict(interface.open_session(app, request)) == {}
    with app.test_request_context("/"):
        from flask import session

        session["admin_id"] = 7
        cookie = interface.get_signing_serializer(app).dumps(dict(session))
    with app.test_request_context("/", headers={"Cookie": f"session={cookie}"}):
        from flask import request

        assert interface.open_session(app, request)["admin_id"] == 7
    bare = Flask("nosecret")
    bare.session_interface = security.SessionInterface()
    with bare.test_request_context("/"):
        from flask import request

        assert bare.session_interface.open_session(bare, request) is None


def test_load_admin_does_not_touch_the_session_or_database_for_api_calls(app, client, monkeypatch):
    from notifier import db

    def no_db(*a, **kw):
        raise AssertionError("load_admin used the database")

    monkeypatch.setattr(db, "connection", no_db)
    response = client.get("/api/v1/noop")
    assert response.status_code == 200
    assert "Cookie" not in response.headers.get("Vary", "")


def test_every_request_still_logged_and_counted(app, client, caplog):
    caplog.set_level(logging.INFO, logger="notifier.requests")
    before = _count_metric(client, "users_api.noop")
    for _ in range(3):
        client.get("/api/v1/noop")
    assert _count_metric(client, "users_api.noop") == before + 3
    records = [r for r in caplog.records if getattr(r, "event", None) == "request"]
    assert [r.endpoint for r in records if r.endpoint == "users_api.noop"] == ["users_api.noop"] * 3
    assert ("GET", "users_api.noop", 200) in _CHILDREN


def test_request_log_fields_are_not_built_when_info_is_off(app, client, caplog, monkeypatch):
    caplog.set_level(logging.WARNING, logger="notifier.requests")
    logger = logging.getLogger("notifier.requests")
    monkeypatch.setattr(logger, "info", lambda *a, **kw: (_ for _ in ()).throw(AssertionError))
    assert client.get("/api/v1/noop").status_code == 200


def _count_metric(client, endpoint: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    prefix = f'notifier_http_requests_total{{endpoint="{endpoint}",method="GET",status="200"}} '
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.removeprefix(prefix))
    return 0.0
