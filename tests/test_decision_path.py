"""The one-statement evidence append: byte-identical hashes, any text, same webhook payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import quote

import helpers
import psycopg
import pytest
from acceptance_helpers import accept, publish_version, put_user
from hypothesis import given, settings
from hypothesis import strategies as st

from notifier import evidence

HEX = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
# Any code point PostgreSQL text can hold: quotes, backslashes, controls, DEL, U+2028, astral.
# The characters each escaping rule is about are drawn often.
CHARS = st.sampled_from('"\\/\x01\x08\t\n\x0c\r\x1f \x7f\x80é\u2028\uffff😀') | st.characters(
    exclude_characters="\x00", exclude_categories=("Cs",)
)
TEXT = st.text(CHARS, max_size=40)
ASCII = st.text(
    st.sampled_from('"\\\x01\x08\n\x7f a@.')
    | st.characters(max_codepoint=127, exclude_characters="\x00"),
    max_size=40,
)

# `evidence.CANONICAL_SQL` over a row given as parameters, as the append statement writes it.
CANONICAL_QUERY = f"""
    SELECT {evidence.CANONICAL_SQL} AS text
      FROM (SELECT %(api_key_id)s::bigint AS api_key_id, %(chain)s::smallint AS chain,
                   %(content_sha256)s::text AS content_sha256,
                   %(context_sha256)s::text AS context_sha256, %(decision)s::text AS decision,
                   %(delivery_id)s::bigint AS delivery_id, %(locale)s::text AS locale,
                   %(method)s::text AS method, %(prompt_text)s::text AS prompt_text,
                   %(subject_key)s::text AS subject_key, %(user_id)s::bigint AS user_id,
                   %(version_id)s::bigint AS version_id) AS r,
           (SELECT %(id)s::bigint AS id, %(prev_hash)s::text AS last_hash,
                   %(recorded_at)s::timestamptz AS now) AS n
"""


@pytest.fixture(scope="module")
def pg(database):
    """One connection for the property tests (they only read)."""
    with psycopg.connect(database, autocommit=True) as conn:
        yield conn


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
            "prompt_text": st.text(CHARS, max_size=200),
            "delivery_id": st.none() | st.integers(1, 2**62),
            "api_key_id": st.none() | st.integers(1, 2**62),
            "context_sha256": HEX,
        }
    )
)
def test_postgresql_writes_the_canonical_bytes_exactly(pg, row):
    """What PostgreSQL hashes is what `verify` hashes, and the format of old rows is unchanged."""
    text = pg.execute(CANONICAL_QUERY, row).fetchone()[0]
    assert text.encode() == evidence.canonical(row)
    legacy = {k: row[k] for k in evidence.CHAINED_FIELDS if k != "prompt_sha256"} | {
        "recorded_at": evidence._utc(row["recorded_at"]),
        "prompt_sha256": evidence.hashlib.sha256(row["prompt_text"].encode()).hexdigest(),
    }
    assert (
        evidence.canonical(row)
        == json.dumps(legacy, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )


@settings(max_examples=300, deadline=None)
@given(
    salt=HEX,
    ip=st.none() | st.sampled_from(["203.0.113.7", "2001:db8::1"]),
    user_agent=TEXT,
    email=st.none() | TEXT | ASCII,
)
def test_postgresql_completes_the_context_digest_exactly(pg, salt, ip, user_agent, email):
    """The API statement appends the stored email to `context_head` as json.dumps would."""
    email_json = evidence.json_ascii_sql("e.email")
    written = pg.execute(
        f"""SELECT {email_json},
                   encode(sha256(convert_to(%(head)s::text || ',' || {email_json} || ']',
                                            'UTF8')), 'hex')
              FROM (SELECT %(email)s::text AS email) AS e""",
        {"email": email, "head": evidence.context_head(salt, ip, user_agent)},
    ).fetchone()
    assert written[0] == json.dumps(email)
    assert written[1] == evidence.context_digest(salt, ip, user_agent, email)


def test_json_ascii_sql_escapes_every_character_as_json_dumps(pg):
    """Each of the first 256 code points and a few others, alone (printable ASCII goes through
    to_json) and beside a non-ASCII one (character by character)."""
    chars = [chr(c) for c in range(1, 256)] + ["\u2028", "\ud7ff", "\ue000", "\uffff", "😀"]
    values = [*chars, *(f"é{c}" for c in chars), "", None]
    written = pg.execute(
        f"""SELECT array_agg({evidence.json_ascii_sql("t.v")} ORDER BY t.i)
              FROM unnest(%(values)s::text[]) WITH ORDINALITY AS t (v, i)""",
        {"values": values},
    ).fetchone()[0]
    assert written == [json.dumps(v) for v in values]


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


def test_the_api_statement_fills_in_locale_email_and_prompt_as_record_does(app, api, db):
    """Locale, email and the default prompt come from the database inside the statement."""
    from notifier import acceptances

    title = 'Privacy {title} "Policy" \\ 😀'
    version = publish_version(app, title=title)
    odd_locale = 'fr"\\\n\x01\x7f\u2028é😀' * 5  # longer than 35 characters
    users = {
        "u-odd": 'a"\\\x01\x7fé😀@例え.jp',  # escaped character by character
        "u-ascii": 'b"q\\@example.com',  # printable ASCII: to_json
        "u-none": None,
    }
    for ext, email in users.items():
        put_user(api, ext, email=email)
    db.execute("UPDATE users SET locale = %s WHERE external_id = 'u-odd'", [odd_locale])
    db.execute("UPDATE users SET locale = '' WHERE external_id = 'u-none'")
    for ext in users:
        response = accept(api, ext, version, locale="", user_agent='ua "😀"\x01')
        assert response.status_code == 201, response.get_json()
    rows = db.execute(
        """SELECT a.*, u.external_id, c.salt, host(c.ip) AS ip, c.user_agent, c.email
             FROM acceptances a JOIN users u ON u.id = a.user_id
             JOIN acceptance_context c ON c.acceptance_id = a.id"""
    ).fetchall()
    by_user = {r["external_id"]: r for r in rows}
    assert by_user["u-odd"]["locale"] == odd_locale[:35]
    assert by_user["u-ascii"]["locale"] == "en" and by_user["u-none"]["locale"] == ""
    for ext, row in by_user.items():
        assert row["email"] == users[ext]
        # Version 1: nothing changed before it (a literal "{title}" in the title stays as is).
        assert row["prompt_text"] == f"Please review our {title} and accept it to continue."
        assert row["context_sha256"] == evidence.context_digest(
            row["salt"], row["ip"], row["user_agent"], row["email"]
        )
        assert row["row_hash"] == evidence.row_hash(row)
    # An update (version 2, now in force): the prompt says so.
    update = publish_version(app, title=title, body=helpers.POLICY_V2, effective_in_days=-1)
    assert accept(api, "u-ascii", update).status_code == 201
    row = db.execute(
        "SELECT prompt_text FROM acceptances WHERE version_id = %s", [update.id]
    ).fetchone()
    assert row["prompt_text"] == acceptances.DEFAULT_PROMPT.replace("{title}", title)
    assert row["prompt_text"].startswith("We have updated our Privacy {title}")
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
            "Please review our Cookie Policy and accept it to continue."  # its first version
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


def test_text_postgresql_cannot_store_is_a_422_whoever_the_user(app, api, db):
    """The request's text goes to PostgreSQL with the key check: NUL or a lone surrogate would
    be a 500 there, so the view refuses it first, for known and unknown users alike."""
    version = publish_version(app)
    put_user(api, "u-1")
    for name in ("locale", "prompt_text", "user_agent"):
        for bad in ("a\x00b", "a\ud800b"):
            for ext in ("u-1", "nobody"):
                response = accept(api, ext, version, **{name: bad})
                assert response.status_code == 422, (name, bad, ext, response.get_json())
                assert name in response.get_json()["fields"]
    assert db.execute("SELECT count(*) AS n FROM acceptances").fetchone()["n"] == 0
    assert accept(api, "u-1", version, locale="fr", user_agent="é😀").status_code == 201


def test_a_raw_statement_numbers_each_placeholder_name_once(db):
    from notifier.db import RawStatement

    statement = RawStatement("SELECT %(a)s::int AS a, %(b)s::text AS b, %(a)s::int + 1 AS c")
    assert statement.sql == "SELECT $1::int AS a, $2::text AS b, $1::int + 1 AS c"
    assert statement.execute(db, {"b": "x", "a": 41}).fetchone() == {"a": 41, "b": "x", "c": 42}
    with pytest.raises(ValueError):
        RawStatement("SELECT 7 %% 2, %(a)s")
