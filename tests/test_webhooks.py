"""SendGrid Event Webhook: signatures (ECDSA P-256 as SendGrid signs), dedupe, state moves."""

from __future__ import annotations

import base64
import json
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from test_notices import add_users, finished, notice_of, published_v1

URL = "/webhooks/sendgrid"


@pytest.fixture
def signer(app):
    """A key pair like SendGrid's: the app holds the base64 DER public key."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    app.config["SENDGRID_WEBHOOK_PUBLIC_KEY"] = base64.b64encode(public).decode()

    def sign(body: str, timestamp: int | None = None, with_key=key) -> dict:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = with_key.sign((ts + body).encode(), ec.ECDSA(hashes.SHA256()))
        return {
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": ts,
            "Content-Type": "application/json",
        }

    return sign


@pytest.fixture
def sent(client, admin, db, fake_sendgrid, run_jobs) -> list[dict]:
    """Three users, one notice sent to them; their deliveries."""
    add_users(db, 3)
    _, v1 = published_v1(client, admin)
    notice = notice_of(db, v1)
    run_jobs(until=finished(db, notice["id"]))
    return db.execute(
        """
        SELECT d.*, u.email AS address
          FROM deliveries d JOIN users u ON u.id = d.user_id
      ORDER BY d.id
    """
    ).fetchall()


def _event(delivery: dict, kind: str, n: int = 0, **extra) -> dict:
    return {
        "email": delivery["address"],
        "timestamp": int(time.time()),
        "event": kind,
        "sg_event_id": f"ev-{delivery['id']}-{kind}-{n}",
        "sg_message_id": f"{delivery['sg_message_id']}.filter0001",
        "notice_id": str(delivery["notice_id"]),
        "delivery_id": str(delivery["id"]),
        **extra,
    }


def _state(db, delivery_id: int) -> str:
    row = db.execute("SELECT state FROM deliveries WHERE id = %(id)s", {"id": delivery_id})
    return row.fetchone()["state"]


def test_signed_events_are_stored_once_and_move_the_ledger(client, db, signer, sent):
    events = [_event(sent[0], "processed"), _event(sent[0], "delivered")]
    body = json.dumps(events)
    response = client.post(URL, data=body, headers=signer(body))
    assert response.status_code == 200 and response.get_json() == {"received": 2, "new": 2}
    assert _state(db, sent[0]["id"]) == "delivered"

    # SendGrid retries the same events in a new, freshly signed request: stored once.
    again = json.dumps(events + [_event(sent[0], "deferred")])
    response = client.post(URL, data=again, headers=signer(again))
    assert response.get_json() == {"received": 3, "new": 1}
    assert db.execute("SELECT count(*) AS n FROM delivery_events").fetchone()["n"] == 3
    assert _state(db, sent[0]["id"]) == "delivered"  # a late deferral does not undo delivery


def test_unsigned_forged_stale_and_replayed_requests_are_refused(client, db, signer, sent):
    body = json.dumps([_event(sent[0], "delivered")])
    assert (
        client.post(URL, data=body, headers={"Content-Type": "application/json"}).status_code == 401
    )

    other = ec.generate_private_key(ec.SECP256R1())
    forged = client.post(URL, data=body, headers=signer(body, with_key=other))
    assert forged.status_code == 403 and "signature" in forged.get_json()["message"]

    tampered = body.replace("delivered", "bounce")
    assert client.post(URL, data=tampered, headers=signer(body)).status_code == 403

    stale = client.post(URL, data=body, headers=signer(body, timestamp=int(time.time()) - 301))
    assert stale.status_code == 403 and "Stale" in stale.get_json()["message"]

    garbage = {**signer(body), "X-Twilio-Email-Event-Webhook-Signature": "not base64!"}
    assert client.post(URL, data=body, headers=garbage).status_code == 403

    headers = signer(body)
    assert client.post(URL, data=body, headers=headers).status_code == 200
    replay = client.post(URL, data=body, headers=headers)
    assert replay.status_code == 403 and "Replayed" in replay.get_json()["message"]
    assert db.execute("SELECT count(*) AS n FROM delivery_events").fetchone()["n"] == 1


def test_bounces_drops_and_spam_reports_suppress_the_address_for_later_notices(
    client, admin, db, signer, sent, fake_sendgrid, run_jobs
):
    events = [
        _event(sent[0], "bounce", reason="550 5.1.1 no such user", type="bounce"),
        _event(sent[1], "spamreport"),
        _event(sent[2], "bounce", reason="421 try later", type="blocked"),
    ]
    body = json.dumps(events)
    assert client.post(URL, data=body, headers=signer(body)).status_code == 200
    assert _state(db, sent[0]["id"]) == "bounced"
    users = db.execute("SELECT email, email_undeliverable_reason FROM users ORDER BY id").fetchall()
    assert users[0]["email_undeliverable_reason"] == "bounce: 550 5.1.1 no such user"
    assert users[1]["email_undeliverable_reason"].startswith("spamreport")
    assert users[2]["email_undeliverable_reason"] is None  # a temporary block is not permanent
    page = client.get("/admin/notices/undeliverable").get_data(as_text=True)
    assert users[0]["email"] in page

    from helpers import POLICY_V2, create_draft, publish

    policy_id = db.execute("SELECT id FROM policies").fetchone()["id"]
    fake_sendgrid.reset()
    v2 = create_draft(client, admin, policy_id, POLICY_V2)
    assert publish(client, admin, policy_id, v2, days=50).status_code == 302
    run_jobs(until=finished(db, notice_of(db, v2)["id"]))
    assert set(fake_sendgrid.recipient_counts()) == {users[2]["email"]}


def test_without_a_configured_key_events_are_refused(app, client):
    app.config["SENDGRID_WEBHOOK_PUBLIC_KEY"] = None
    assert (
        client.post(URL, data="[]", headers={"Content-Type": "application/json"}).status_code == 503
    )


def test_a_signed_body_that_is_not_json_is_a_422(client, db, signer):
    """Also when it is nested too deeply for the parser: 422, nothing stored."""
    for body in ("not json", "[" * 100_000 + "]" * 100_000):
        response = client.post("/webhooks/sendgrid", data=body, headers=signer(body))
        assert response.status_code == 422, response.get_data(as_text=True)[:200]
        assert response.get_json()["message"] == "The body is not JSON."
    assert db.execute("SELECT count(*) AS n FROM delivery_events").fetchone()["n"] == 0
