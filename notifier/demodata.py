"""Load the demo company (notifier/demo/): an admin, its policies with dated versions, users."""

from __future__ import annotations

import csv
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from psycopg import Connection

from policy_versions import store

from . import auth, jobs, notices

DEMO = Path(__file__).resolve().parent / "demo"
DEMO_ADMIN_EMAIL = "admin@example.com"
DEMO_ADMIN_PASSWORD = "demo-password-2026"
MAX_BYTES = 1_000_000


def _fill(text: str, effective_at: datetime, published_at: datetime) -> str:
    return text.replace("{{effective_date}}", f"{effective_at:%-d %B %Y}").replace(
        "{{last_updated}}", f"{published_at:%-d %B %Y}"
    )


def load(conn: Connection, now: datetime | None = None, zone: str = "Europe/Paris") -> str:
    """Create what is missing and leave the rest: running it twice changes nothing.

    Effective dates fall at midnight in `zone`, as a legal team would set them.
    """
    now = now or datetime.now(UTC)
    created: list[str] = []
    if (
        conn.execute(
            "SELECT 1 FROM admins WHERE lower(email) = %(e)s", {"e": DEMO_ADMIN_EMAIL}
        ).fetchone()
        is None
    ):
        auth.create_admin(conn, DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD)
        created.append("admin")

    manifest = tomllib.loads((DEMO / "manifest.toml").read_text())
    to_enqueue: list[dict] = []
    today = now.astimezone(ZoneInfo(zone)).replace(hour=0, minute=0, second=0, microsecond=0)
    for spec in manifest["policies"]:
        policy = store.find_policy(conn, spec["slug"]) or store.create_policy(
            conn, spec["slug"], spec["title"]
        )
        for seq, vspec in enumerate(spec["versions"], 1):
            effective_at = today + timedelta(days=vspec["effective_days"])
            # Past versions were published a month before they took effect; upcoming ones now.
            published_at = min(now, effective_at - timedelta(days=30))
            if store.find_version(conn, policy.id, seq) is None:
                body = _fill((DEMO / vspec["file"]).read_text(), effective_at, published_at)
                draft = store.create_draft(
                    conn, policy.id, body, created_by=None, max_bytes=MAX_BYTES
                )
                draft = store.classify_draft(conn, draft)
                # The demo takes the classifier's word unless the manifest overrides it, with a
                # reason, as an administrator would; a first version changes everything.
                suggested = draft.suggested_verdict or "material"
                verdict = vspec.get("verdict", suggested)
                with conn.transaction():
                    version = store.publish(
                        conn,
                        draft.id,
                        effective_at=effective_at,
                        summary=vspec["summary"],
                        published_by=None,
                        verdict=verdict,
                        override_reason=None if verdict == suggested else vspec["override_reason"],
                        acceptance_mode=vspec.get("acceptance_mode", "explicit"),
                        now=published_at,
                    )
                    if effective_at > now:  # upcoming: its users are being told about it now
                        notice = notices.create_for_publish(
                            conn, version, notices.NoticeOptions(), created_by=None, now=now
                        )
                        if notice is not None:
                            to_enqueue.append(notice)
                created.append(f"{spec['slug']} v{seq}")

    with open(DEMO / "users.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            """
            INSERT INTO users (external_id, email, name, locale, segment)
            VALUES (%(external_id)s, %(email)s, %(name)s, %(locale)s, %(segment)s)
            ON CONFLICT (external_id) DO NOTHING
        """,
            rows,
        )
    for notice in to_enqueue:  # after COMMIT, and after the users exist
        jobs.enqueue_notice(notice)
    count = conn.execute("SELECT count(*) AS n FROM users").fetchone()["n"]
    done = ", ".join(created) if created else "nothing new"
    return f"Demo loaded ({done}); {count} users."
