"""The one-statement evidence append: byte-identical hashes, any text, same webhook payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import quote

import psycopg
import pytest
from acceptance_helpers import accept, publish_version, put_user
from hypothesis import given, settings
from hypothesis import strategies as st

from notifier import evidence

HEX = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
TEXT = st.text(max_size=40)  # any code point: quotes, backslashes, controls, U+2028, astral


@settings(max_examples=300, deadline=None)
@given(
    row=st.fixed_dictionaries(
        {
            "id": st.integers(1, 2**62),
            "chain": st.integers(0, 15),
            "prev_hash": HEX,
            "subject_key": HEX,
            "user_id": st.integers(1, 2**62),
            "version_id": st.integers(1, 2**62),
            "content_sha256": HEX,
            "decision": st.sampled_from(["accepted", "declined"]),
            "method": st.sampled_from(["click", "email_link", "api", "implied"]),
            "recorded_at": st.datetimes(
                min_value=datetime(2000, 1, 1),
                max_value=datetime(2200, 1, 1),
                timezones=st.just(UTC),
            ),
            "locale": TEXT,
            "prompt_text": st.text(max_size=200),
            "delivery_id": st.none() | st.integers(1, 2**62),
            "api_key_id": st.none() | st.integers(1, 2**62),
            "context_sha256": HEX,
        }
    )
)
def test_canonical_parts_rebuild_the_canonical_bytes_exactly(row):
    """What PostgreSQL hashes is what `verify` hashes, and the format of old rows is unchanged."""
    c0, c1, c2, c3 = evidence.canonical_parts(row)
    text = f"{c0}{row['id']}{c1}{row['prev_hash']}{c2}{evidence._utc(row['recorded_at'])}{c3}"
    assert text.encode() == evidence.canonical(row)
    legacy = {k: row[k] for k in evidence.CHAINED_FIELDS if k != "prompt_sha256"} | {
        "recorded_at": evidence._utc(row["recorded_at"]),
        "prompt_sha256": evidence.hashlib.sha256(row["prompt_text"].encode()).hexdigest(),
    }
    assert (
        evidence.canonical(row)
        == json.dumps(legacy, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )


def test_hashes_written_by_postgresql_verify_for_awkward_text(app, api, db):
    """Locale, prompt and user agent with quotes, backslashes, controls and astral characters."""
    version = publish_version(app)
    odd = 'fr"\\\n\t\x01\u2028é😀'
    for i, extra in enumerate(
        [
            {"locale": odd, "prompt_text": 'Accept? « oui » \\ "quoted" 😀\n', "user_agent": odd},
            {"locale": "", "prompt_text": ""},
            {},
        ]
    ):
        put_user(api, f"u-{i}")
        response = accept(api, f"u-{i}", version, **extra)
        assert response.status_code == 201, response.get_json()
    rows = db.execute("SELECT * FROM acceptances ORDER BY id").fetchall()
    assert rows[0]["locale"] == odd[:35]
    for row in rows:
        assert evidence.row_hash(row) == row["row_hash"]
    result = app.test_cli_runner().invoke(args=["evidence", "verify"])
    assert result.exit_code == 0, result.output


def test_every_path_appends_to_the_same_chain(app, api, db):
    """API decisions (one statement) and `acceptances.record` (widget, email link, implied)."""
    from notifier import acceptances
    from notifier import db as notifier_db

    version = publish_version(app)
    user_ids = []
    for i in range(6):
        put_user(api, f"u-{i}")
    with app.app_context(), notifier_db.connection() as conn:
        for i in range(0, 6, 2):
            user = conn.execute("SELECT * FROM users WHERE external_id = %s", [f"u-{i}"]).fetchone()
            user_ids.append(user["id"])
            with conn.transaction():
                v = acceptances.find_version(conn, {"version_uid": str(version.uid)})
                row, created, _ = acceptances.record(
                    conn, user, v, decision="accepted", method="click", now=datetime.now(UTC)
                )
            assert created and row["method"] == "click"
    for i in range(1, 6, 2):
        assert accept(api, f"u-{i}", version).status_code == 201
    methods = [r["method"] for r in db.execute("SELECT method FROM acceptances ORDER BY id")]
    assert methods == ["click"] * 3 + ["api"] * 3
    result = app.test_cli_runner().invoke(args=["evidence", "verify"])
    assert result.exit_code == 0, result.output


def test_api_and_widget_paths_queue_the_same_webhook_payload(app, api, db):
    from notifier import acceptances
    from notifier import db as notifier_db

    key_id = db.execute("SELECT id FROM api_keys").fetchone()["id"]
    db.execute(
        """INSERT INTO api_key_settings (api_key_id, widget_secret, webhook_url, webhook_secret)
           VALUES (%s, 'w', 'https://host.example/hook', 's')""",
        [key_id],
    )
    version = publish_version(app)
    put_user(api, "u-api")
    put_user(api, "u-click")
    assert accept(api, "u-api", version).status_code == 201
    with app.app_context(), notifier_db.connection() as conn, conn.transaction():
        user = conn.execute("SELECT * FROM users WHERE external_id = 'u-click'").fetchone()
        v = acceptances.find_version(conn, {"version_uid": str(version.uid)})
        acceptances.record(conn, user, v, decision="accepted", method="api", now=datetime.now(UTC))
    events = db.execute(
        """SELECT e.payload, a.id, a.recorded_at
             FROM host_webhook_events e JOIN acceptances a ON a.id = e.acceptance_id
         ORDER BY e.id"""
    ).fetchall()
    assert len(events) == 2
    for event in events:
        body = event["payload"]["acceptance"]
        assert body["id"] == event["id"]
        assert datetime.fromisoformat(body["recorded_at"]) == event["recorded_at"]
    first, second = (e["payload"] for e in events)
    assert first["acceptance"].pop("external_id") == "u-api"
    assert second["acceptance"].pop("external_id") == "u-click"
    for payload in (first, second):
        del payload["acceptance"]["id"], payload["acceptance"]["recorded_at"]
    assert first == second


def test_pending_links_are_what_url_for_builds_for_any_external_id(app, api, client):
    """The document is built in SQL; its links must match Flask's, script root included."""
    from flask import url_for

    version = publish_version(app, mode="explicit")
    publish_version(app, slug="cookies", title="Cookie Policy", mode="notice", verdict="minor")
    ext = "ann smith?#%é+@:=&"
    quoted = quote(ext, safe="")
    assert api.put(f"/api/v1/users/{quoted}", json={"email": "ann@example.com"}).status_code == 201
    for root in ("", "/sub"):
        response = client.get(
            f"/api/v1/users/{quoted}/pending",
            headers=api.headers,
            base_url=f"https://host.example{root}/",
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.headers["Cache-Control"] == "no-store"
        body = response.get_json()
        assert body["external_id"] == ext and body["blocking"] is True
        by_policy = {item["policy"]: item for item in body["pending"]}
        assert list(by_policy) == ["cookies", "privacy"]  # ordered by title
        with app.test_request_context("/", base_url=f"https://host.example{root}/"):
            for item in body["pending"]:
                assert item["links"] == {
                    "text": url_for(
                        "public.version_show", slug=item["policy"], seq=1, _external=True
                    ),
                    "redline": url_for(
                        "public.version_changes", slug=item["policy"], seq=1, _external=True
                    ),
                    "accept": url_for(
                        "users_api.acceptance_create", external_id=ext, _external=True
                    ),
                }
        privacy, cookies = by_policy["privacy"], by_policy["cookies"]
        assert privacy["blocks_at"] == privacy["effective_at"] and privacy["blocking"] is True
        assert cookies["blocks_at"] is None and cookies["blocking"] is False
        assert cookies["prompt"] == (
            "We have updated our Cookie Policy. Please review what changed and accept to continue."
        )
        assert str(version.uid) == privacy["version_uid"]
        assert datetime.fromisoformat(privacy["effective_at"]).utcoffset().total_seconds() == 0
    # The accept link works as given.
    link = by_policy["privacy"]["links"]["accept"]
    assert link.startswith("https://host.example/sub/api/v1/users/")
    response = client.post(
        link.removeprefix("https://host.example/sub"),
        json={"version_uid": str(version.uid)},
        headers=api.headers,
    )
    assert response.status_code == 201 and response.get_json()["policy"] == "privacy"
    assert api.get(f"/api/v1/users/{quoted}/pending").get_json()["blocking"] is False


def test_noop_baseline_can_add_one_database_round_trip(client):
    assert client.get("/api/v1/noop").get_json() == {"ok": True}
    assert client.get("/api/v1/noop?db=1").get_json() == {"ok": True}
    response = client.get("/api/v1/noop?db=yes")
    assert response.status_code == 422 and response.get_json()["fields"] == {"db": "0 or 1"}


def _delivery(db, version_id, user_id):
    notice = db.execute("SELECT id FROM notices WHERE version_id = %s", [version_id]).fetchone()
    notice_id = (
        notice
        or db.execute(
            "INSERT INTO notices (version_id, email, in_app, state)"
            " VALUES (%s, true, true, 'done') RETURNING id",
            [version_id],
        ).fetchone()
    )["id"]
    return db.execute(
        "INSERT INTO deliveries (notice_id, user_id, batch_no, state)"
        " VALUES (%s, %s, 0, 'delivered') RETURNING id",
        [notice_id, user_id],
    ).fetchone()["id"]


def test_a_host_cannot_attach_evidence_to_someone_elses_notice(app, api, db):
    version = publish_version(app)
    other = publish_version(app, slug="terms", title="Terms")
    for ext in ("u-1", "u-2"):
        put_user(api, ext)
    ids = {r["external_id"]: r["id"] for r in db.execute("SELECT id, external_id FROM users")}
    mine = _delivery(db, version.id, ids["u-1"])
    theirs = _delivery(db, version.id, ids["u-2"])
    wrong_version = _delivery(db, other.id, ids["u-1"])
    for bad in (theirs, wrong_version, 999_999, 0, -1, True, 2**63, "7"):
        response = accept(api, "u-1", version, delivery_id=bad)
        assert response.status_code == 422, (bad, response.get_json())
        assert "delivery_id" in response.get_json()["fields"]
    assert db.execute("SELECT count(*) AS n FROM acceptances").fetchone()["n"] == 0
    response = accept(api, "u-1", version, delivery_id=mine)
    assert response.status_code == 201 and response.get_json()["delivery_id"] == mine


def test_the_database_refuses_evidence_naming_a_delivery_that_does_not_exist(app, api, db):
    from notifier import acceptances
    from notifier import db as notifier_db

    version = publish_version(app)
    put_user(api, "u-1")
    with app.app_context(), notifier_db.connection() as conn:
        user = conn.execute("SELECT * FROM users").fetchone()
        v = acceptances.find_version(conn, {"version_uid": str(version.uid)})
        with pytest.raises(psycopg.errors.ForeignKeyViolation), conn.transaction():
            acceptances.record(
                conn,
                user,
                v,
                decision="accepted",
                method="email_link",
                now=datetime.now(UTC),
                delivery_id=424242,
            )
    assert db.execute("SELECT count(*) AS n FROM acceptances").fetchone()["n"] == 0
