"""Webhooks to the host application: acceptance.created / acceptance.declined, signed, retried."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request

from psycopg import Connection
from psycopg.types.json import Jsonb
from rq import Retry

from . import db, queues

# RQ retries a failed delivery after these many seconds (about 1 h 40 min in all).
BACKOFF = [10, 60, 300, 1200, 4800]
TIMEOUT = 10


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256 of "<unix>." + body>` — the Stripe-style scheme."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def create_events(conn: Connection, user: dict, version: dict, row: dict) -> list[int]:
    """Queue one event per key with a webhook URL that can see this user (same transaction)."""
    event = "acceptance.created" if row["decision"] == "accepted" else "acceptance.declined"
    payload = {
        "event": event,
        "acceptance": {
            "id": row["id"],
            "external_id": user["external_id"],
            "policy": version["slug"],
            "version": version["seq"],
            "version_uid": str(version["uid"]),
            "decision": row["decision"],
            "method": row["method"],
            "recorded_at": row["recorded_at"].isoformat(),
            "content_sha256": row["content_sha256"],
        },
    }
    return [
        r["id"]
        for r in conn.execute(
            """
            INSERT INTO host_webhook_events (api_key_id, acceptance_id, event, url, payload)
            SELECT s.api_key_id, %(acceptance_id)s, %(event)s, s.webhook_url, %(payload)s
              FROM api_key_settings s
              JOIN api_keys k ON k.id = s.api_key_id
             WHERE s.webhook_url IS NOT NULL AND k.revoked_at IS NULL
               AND (NOT s.scoped OR s.api_key_id = %(owner)s)
            ON CONFLICT (api_key_id, acceptance_id) DO NOTHING
            RETURNING id
        """,
            {
                "acceptance_id": row["id"],
                "event": event,
                "payload": Jsonb(payload),
                "owner": user["api_key_id"],
            },
        ).fetchall()
    ]


def enqueue(event_ids: list[int]) -> None:
    """After COMMIT: one job per event; RQ retries with backoff when the host fails."""
    for event_id in event_ids:
        queues.queue("default").enqueue(
            deliver_host_webhook,
            event_id,
            job_id=f"host-webhook-{event_id}",
            retry=Retry(max=len(BACKOFF), interval=BACKOFF),
            job_timeout=TIMEOUT * 3,
        )


def deliver_host_webhook(event_id: int) -> int:
    """POST one event; a non-2xx answer or a network error raises so that RQ retries."""
    with db.connection() as conn:
        event = conn.execute(
            """
            SELECT e.*, s.webhook_secret
              FROM host_webhook_events e
              JOIN api_key_settings s ON s.api_key_id = e.api_key_id
             WHERE e.id = %(id)s
        """,
            {"id": event_id},
        ).fetchone()
    if event is None or event["state"] == "delivered":
        return 0
    body = json.dumps(event["payload"], separators=(",", ":")).encode()
    timestamp = int(time.time())
    request = urllib.request.Request(
        event["url"],
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "PolicyNotifier-Webhook/1",
            "X-PolicyNotifier-Event": event["event"],
            "X-PolicyNotifier-Delivery": str(event["id"]),
            "X-PolicyNotifier-Signature": sign(event["webhook_secret"], timestamp, body),
        },
    )
    status, error = None, None
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as exc:
        status, error = exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        error = str(getattr(exc, "reason", exc))[:500]
    ok = status is not None and 200 <= status < 300
    final = event["attempts"] + 1 > len(BACKOFF)
    state = "delivered" if ok else ("failed" if final else "retrying")
    with db.connection() as conn:
        conn.execute(
            """
            UPDATE host_webhook_events
               SET attempts = attempts + 1, last_status = %(status)s, last_error = %(error)s,
                   last_attempt_at = now(), state = %(state)s
             WHERE id = %(id)s
        """,
            {"status": status, "error": error, "state": state, "id": event_id},
        )
    if not ok:
        raise RuntimeError(f"host webhook {event_id} to {event['url']} failed: {error or status}")
    return status


def list_events(conn: Connection, api_key_id: int, limit: int = 20) -> list[dict]:
    return conn.execute(
        """
        SELECT *
          FROM host_webhook_events
         WHERE api_key_id = %(key)s
      ORDER BY id DESC
         LIMIT %(limit)s
    """,
        {"key": api_key_id, "limit": limit},
    ).fetchall()
