"""`version.published`: every key with a webhook URL hears of a new version, signed, once."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest
from helpers import POLICY_V1, POLICY_V2, create_draft, create_policy, publish_form


@pytest.fixture
def receiver(app):
    app.config["HOST_WEBHOOK_ALLOW_PRIVATE"] = True  # the receiver listens on 127.0.0.1
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"url": f"http://127.0.0.1:{server.server_port}/hook", "received": received}
    server.shutdown()
    server.server_close()


def _keys_with_hooks(app, db, url) -> dict[str, dict]:
    """Three keys: scoped with a URL, unscoped with a URL, a revoked one with a URL; plus none."""
    from notifier import auth, hostkeys
    from notifier import db as notifier_db

    settings = {}
    with app.app_context(), notifier_db.connection() as conn:
        for name, scoped in (("scoped", True), ("open", False), ("revoked", False)):
            row, _ = auth.create_api_key(conn, name, None)
            settings[name] = hostkeys.update_settings(
                conn, row["id"], scoped=scoped, origins=[], webhook_url=url, allow_private=True
            )
            settings[name]["key_id"] = row["id"]
        auth.create_api_key(conn, "no-hook", None)
    db.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE id = %s", [settings["revoked"]["key_id"]]
    )
    return settings


def _work(app):
    from notifier import queues
    from notifier.workers import AppSimpleWorker

    with app.app_context():
        AppSimpleWorker(["default"], connection=queues.redis_connection(app), app=app).work(
            burst=True
        )


def test_publishing_in_the_admin_ui_tells_every_key_with_a_webhook(
    app, client, admin, db, receiver
):
    settings = _keys_with_hooks(app, db, receiver["url"])
    policy_id = create_policy(client, admin)
    version_id = create_draft(client, admin, policy_id)
    form = publish_form(admin, days=30, summary="We now keep logs for 90 days.")
    response = client.post(f"/admin/policies/{policy_id}/versions/{version_id}/publish", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)
    events = db.execute(
        "SELECT api_key_id, version_id, acceptance_id, event FROM host_webhook_events ORDER BY id"
    ).fetchall()
    assert {e["api_key_id"] for e in events} == {
        settings["scoped"]["key_id"],
        settings["open"]["key_id"],
    }  # scoped keys too (a version concerns every user); not the revoked one
    assert all(e["version_id"] == version_id and e["acceptance_id"] is None for e in events)
    _work(app)
    assert len(receiver["received"]) == 2
    by_secret = {s["webhook_secret"]: s for s in settings.values()}
    for headers, body in receiver["received"]:
        assert headers["X-PolicyNotifier-Event"] == "version.published"
        stamp, mac = (
            part.split("=", 1)[1] for part in headers["X-PolicyNotifier-Signature"].split(",")
        )
        assert any(
            hmac.compare_digest(
                mac,
                hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest(),
            )
            for secret in by_secret
        )
        payload = json.loads(body)
        assert payload["event"] == "version.published"
        version = payload["version"]
        assert (version["policy"], version["version"], version["acceptance_mode"]) == (
            "privacy",
            1,
            "explicit",
        )
        assert version["summary"] == "We now keep logs for 90 days." and version["material"] is True
        effective = datetime.fromisoformat(version["effective_at"])
        assert timedelta(days=29) < effective - datetime.now(UTC) < timedelta(days=31)
    states = [r["state"] for r in db.execute("SELECT state FROM host_webhook_events")]
    assert states == ["delivered", "delivered"]


def test_a_refused_publish_queues_no_event(app, client, admin, db, receiver):
    _keys_with_hooks(app, db, receiver["url"])
    policy_id = create_policy(client, admin)
    v1 = create_draft(client, admin, policy_id)
    form = publish_form(admin, days=1)
    assert (
        client.post(f"/admin/policies/{policy_id}/versions/{v1}/publish", data=form).status_code
        == 302
    )
    v2 = create_draft(client, admin, policy_id, body=POLICY_V2)
    form = publish_form(admin, days=5)  # a material change under the 30 days' notice: refused
    response = client.post(f"/admin/policies/{policy_id}/versions/{v2}/publish", data=form)
    assert response.status_code == 422
    versions = {r["version_id"] for r in db.execute("SELECT version_id FROM host_webhook_events")}
    assert versions == {v1}


def test_publishing_through_the_api_tells_the_hosts_too(app, api, db, receiver):
    from notifier import db as notifier_db
    from policy_versions import store

    _keys_with_hooks(app, db, receiver["url"])
    with app.app_context(), notifier_db.connection() as conn:
        store.create_policy(conn, "terms", "Terms of Service")
    assert (
        api.post("/api/v1/policies/terms/versions", json={"body_markdown": POLICY_V1}).status_code
        == 201
    )
    body = {
        "effective_at": (datetime.now(UTC) + timedelta(days=3)).isoformat(),
        "summary": "First.",
        "verdict": "material",
    }
    assert api.post("/api/v1/policies/terms/versions/1/publish", json=body).status_code == 200
    _work(app)
    payloads = [json.loads(b) for _, b in receiver["received"]]
    assert [p["version"]["policy"] for p in payloads] == ["terms", "terms"]


def test_the_database_keeps_each_event_about_one_thing(app, db):
    key = db.execute(
        "INSERT INTO api_keys (name, prefix, key_sha256)"
        " VALUES ('k', 'pn_x', repeat('a', 64)) RETURNING id"
    ).fetchone()["id"]
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute(
            """INSERT INTO host_webhook_events (api_key_id, event, url, payload)
               VALUES (%s, 'version.published', 'https://h.example/', '{}')""",
            [key],
        )
