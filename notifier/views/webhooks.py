"""SendGrid's signed Event Webhook: verify, store each event once, move the ledger."""

from __future__ import annotations

import binascii
import hashlib
import time
from datetime import UTC, datetime

from flask import Blueprint, current_app, jsonify, request
from psycopg import Connection
from psycopg.types.json import Jsonb
from sendgrid.helpers.eventwebhook import EventWebhook

from policy_versions.errors import Forbidden, NotifierError, Unauthorized, ValidationError

from .. import db, queues
from ..security import csrf

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
csrf.exempt(bp)  # authenticated by SendGrid's signature, never by cookie

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"

# Which events move a delivery, from which states. A late `deferred` never undoes `delivered`;
# an event for a row still `pending` (its send timed out but SendGrid took it) stops a re-send.
TRANSITIONS = {
    "delivered": ("delivered", ("pending", "sending", "sent", "deferred")),
    "deferred": ("deferred", ("pending", "sending", "sent")),
    "bounce": ("bounced", ("pending", "sending", "sent", "deferred", "delivered")),
    "dropped": ("dropped", ("pending", "sending", "sent", "deferred")),
}
SUPPRESSING = ("bounce", "dropped", "spamreport")


class Unavailable(NotifierError):
    status = 503
    code = "webhook_not_configured"


def verify(raw: str) -> None:
    """Signed by SendGrid's key, recent, and not seen before; else a 4xx saying which."""
    key = current_app.config.get("SENDGRID_WEBHOOK_PUBLIC_KEY")
    if not key:
        raise Unavailable("SENDGRID_WEBHOOK_PUBLIC_KEY is not configured; events are refused.")
    signature = request.headers.get(SIGNATURE, "")
    timestamp = request.headers.get(TIMESTAMP, "")
    if not signature or not timestamp:
        raise Unauthorized(f"Unsigned request: {SIGNATURE} and {TIMESTAMP} are required.")
    try:
        sent_at = int(timestamp)
    except ValueError as exc:
        raise Forbidden("The timestamp is not an integer.") from exc
    max_age = current_app.config["WEBHOOK_MAX_AGE_SECONDS"]
    if abs(time.time() - sent_at) > max_age:
        raise Forbidden(f"Stale request: signed more than {max_age} s from now.")
    try:
        valid = EventWebhook(key).verify_signature(raw, signature, timestamp)
    except (ValueError, TypeError, binascii.Error):
        valid = False
    if not valid:
        raise Forbidden("The signature does not match the body.")
    digest = hashlib.sha256(f"{timestamp}.{signature}".encode()).hexdigest()
    redis = queues.redis_connection()
    if not redis.set(f"notifier:webhook-seen:{digest}", 1, nx=True, ex=2 * max_age + 60):
        raise Forbidden("Replayed request: this signed body was already received.")


@bp.post("/sendgrid")
def sendgrid_events():
    raw = request.get_data(as_text=True)
    verify(raw)
    try:
        events = current_app.json.loads(raw)  # nested too deeply is a ValueError there too
    except ValueError as exc:
        raise ValidationError("The body is not JSON.") from exc
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise ValidationError("The body must be a JSON array of event objects.")
    with db.connection() as conn, conn.transaction():
        new = sum(record_event(conn, e) for e in events)
    return jsonify({"received": len(events), "new": new})


def _delivery_id(event: dict) -> int | None:
    value = event.get("delivery_id")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def record_event(conn: Connection, event: dict) -> bool:
    """Store one event (once per sg_event_id) and apply it; False for a duplicate."""
    sg_event_id = event.get("sg_event_id")
    kind = event.get("event")
    if not isinstance(sg_event_id, str) or not sg_event_id or not isinstance(kind, str):
        return False  # nothing to deduplicate on: SendGrid always sends both
    occurred = None
    if isinstance(event.get("timestamp"), int | float):
        occurred = datetime.fromtimestamp(event["timestamp"], UTC)
    reason = event.get("reason") or event.get("response") or event.get("type")
    row = conn.execute(
        """
        INSERT INTO delivery_events (sg_event_id, delivery_id, event, email, reason, occurred_at,
                                     payload)
        VALUES (%(sg)s, (SELECT id FROM deliveries WHERE id = %(d)s), %(event)s, %(email)s,
                %(reason)s, %(at)s, %(payload)s)
        ON CONFLICT (sg_event_id) DO NOTHING
        RETURNING delivery_id
    """,
        {
            "sg": sg_event_id[:200],
            "d": _delivery_id(event),
            "event": kind[:50],
            "email": str(event.get("email") or "")[:320] or None,
            "reason": str(reason)[:2000] if reason else None,
            "at": occurred,
            "payload": Jsonb(event),
        },
    ).fetchone()
    if row is None:
        return False
    delivery_id = row["delivery_id"]
    if delivery_id is not None and kind in TRANSITIONS:
        state, sources = TRANSITIONS[kind]
        conn.execute(
            """
            UPDATE deliveries
               SET state = %(state)s, event_at = %(at)s, updated_at = now(),
                   error = CASE WHEN %(state)s IN ('bounced', 'dropped') THEN %(reason)s
                                ELSE error END,
                   lease_expires_at = NULL
             WHERE id = %(id)s AND state = ANY(%(sources)s)
        """,
            {
                "id": delivery_id,
                "state": state,
                "sources": list(sources),
                "at": occurred,
                "reason": reason,
            },
        )
    if kind in SUPPRESSING and not (kind == "bounce" and event.get("type") == "blocked"):
        _suppress(conn, delivery_id, event.get("email"), f"{kind}: {reason or 'no reason given'}")
    return True


def _suppress(conn: Connection, delivery_id: int | None, email, reason: str) -> None:
    """Mark the address undeliverable so later notices skip it (the admin can reset it)."""
    conn.execute(
        """
        UPDATE users
           SET email_undeliverable_at = coalesce(email_undeliverable_at, now()),
               email_undeliverable_reason = %(reason)s
         WHERE id = (SELECT user_id FROM deliveries WHERE id = %(d)s)
            OR (%(d)s::bigint IS NULL AND lower(email) = lower(%(email)s))
    """,
        {
            "d": delivery_id,
            "email": email if isinstance(email, str) else None,
            "reason": reason[:500],
        },
    )
