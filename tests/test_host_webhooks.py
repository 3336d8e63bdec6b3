"""Webhooks to the host: signed acceptance events, delivered by RQ, retried, status visible."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from acceptance_helpers import accept, publish_version, put_user


@pytest.fixture
def receiver(app):
    """A host on 127.0.0.1, which only HOST_WEBHOOK_ALLOW_PRIVATE lets webhooks reach."""
    app.config["HOST_WEBHOOK_ALLOW_PRIVATE"] = True
    received, answers = [], []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers, body))  # case-insensitive, as HTTP is
            self.send_response(answers.pop(0) if answers else 200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {
        "url": f"http://127.0.0.1:{server.server_port}/hook",
        "received": received,
        "answers": answers,
    }
    server.shutdown()
    server.server_close()


def _configure(app, url):
    from notifier import db, hostkeys

    with app.app_context(), db.connection() as conn:
        key_id = conn.execute("SELECT id FROM api_keys").fetchone()["id"]
        return hostkeys.update_settings(
            conn,
            key_id,
            scoped=False,
            origins=[],
            webhook_url=url,
            allow_private=app.config["HOST_WEBHOOK_ALLOW_PRIVATE"],
        )


def _work(app):
    from notifier import queues
    from notifier.workers import AppSimpleWorker

    with app.app_context():
        AppSimpleWorker(["default"], connection=queues.redis_connection(app), app=app).work(
            burst=True
        )


def test_acceptance_and_decline_are_posted_signed(app, api, db, receiver):
    settings = _configure(app, receiver["url"])
    version = publish_version(app, effective_in_days=5)
    put_user(api, "u-1")
    put_user(api, "u-2")
    accept(api, "u-1", version)
    api.post("/api/v1/users/u-2/declines", json={"version_uid": str(version.uid)})
    _work(app)
    events = sorted(json.loads(body)["event"] for _, body in receiver["received"])
    assert events == ["acceptance.created", "acceptance.declined"]
    headers, body = receiver["received"][0]
    stamp, mac = (
        part.split("=", 1)[1] for part in headers["X-PolicyNotifier-Signature"].split(",")
    )
    expected = hmac.new(
        settings["webhook_secret"].encode(), f"{stamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    assert mac == expected
    states = [r["state"] for r in db.execute("SELECT state FROM host_webhook_events")]
    assert states == ["delivered", "delivered"]


def test_a_failing_host_is_retried_and_the_admin_sees_the_status(
    app, api, admin, client, db, receiver
):
    from rq.registry import ScheduledJobRegistry

    from notifier import queues

    _configure(app, receiver["url"])
    receiver["answers"].append(500)
    version = publish_version(app)
    put_user(api, "u-1")
    accept(api, "u-1", version)
    _work(app)
    row = db.execute("SELECT * FROM host_webhook_events").fetchone()
    assert (row["state"], row["attempts"], row["last_status"]) == ("retrying", 1, 500)
    with app.app_context():
        scheduled = ScheduledJobRegistry("default", connection=queues.redis_connection(app))
        assert f"host-webhook-{row['id']}" in scheduled.get_job_ids()
    page = client.get(f"/admin/host/keys/{row['api_key_id']}").get_data(as_text=True)
    assert "retrying" in page and "500" in page
