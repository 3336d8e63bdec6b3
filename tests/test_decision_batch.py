"""The API's decisions written in batches (group commit): each answered as if it were alone."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime

import helpers
import psycopg
from acceptance_helpers import accept, publish_version


def _params(app, key, external_id, version_uid, decision="accepted", **kw):
    from notifier import auth, decisions

    with app.app_context():
        return decisions.decide_params(
            auth._digest(key),
            external_id,
            decisions.VersionRef(uid=str(version_uid)),
            decision=decision,
            now=datetime.now(UTC),
            ip=kw.get("ip", "198.51.100.4"),
            user_agent=kw.get("user_agent", "batch-test"),
            locale=kw.get("locale"),
            prompt_text=kw.get("prompt_text"),
            delivery_id=kw.get("delivery_id"),
        )


def _run(app, batch):
    from notifier import decisions

    with app.app_context():
        return decisions._run_batch(batch)


def _add_users(api, names):
    response = api.post(
        "/api/v1/users/bulk",
        json={"users": [{"external_id": n, "email": f"{n}@example.com"} for n in names]},
    )
    assert response.status_code == 200, response.get_json()


def _verify(app, rows):
    result = app.test_cli_runner().invoke(args=["evidence", "verify"])
    assert result.exit_code == 0 and f"Evidence chain OK: {rows} rows" in result.output, (
        result.output
    )


def test_a_mixed_batch_answers_each_request_as_if_it_were_alone(app, api, api_key, db):
    from notifier.errors import Conflict, NotFound, Unauthorized, ValidationError

    db.execute(
        """INSERT INTO api_key_settings (api_key_id, widget_secret, webhook_url, webhook_secret)
           SELECT id, 'w', 'https://host.example/hook', 's' FROM api_keys"""
    )
    old = publish_version(app, effective_in_days=-20)
    changed = helpers.POLICY_V1 + "\n\n## Retention\n\nWe now keep support chats for a year.\n"
    current = publish_version(app, body=changed, effective_in_days=-10)
    _add_users(api, [f"u-{i}" for i in range(40)])
    assert accept(api, "u-3", current).status_code == 201  # decided before the batch
    ids = {r["external_id"]: r["id"] for r in db.execute("SELECT id, external_id FROM users")}
    same_chain = [u for u in ids if ids[u] % 16 == ids["u-0"] % 16]
    assert len(same_chain) >= 3  # three users whose rows follow each other in one chain

    def p(ext, version=current, **kw):
        return _params(app, api_key, ext, version.uid, **kw)

    batch = [
        p(same_chain[0]),
        p(same_chain[1]),
        p("u-1", decision="declined"),
        p("u-2"),
        p("u-2"),  # the same decision twice in one batch
        p("u-3"),  # decided already
        p("nobody"),
        _params(app, api_key, "u-4", uuid.uuid4()),  # no such version
        p("u-5", version=old),  # superseded
        _params(app, "pn_not-a-key", "u-6", current.uid),
        p("u-7", delivery_id=999_999),  # not a delivery of this version to this user
        p(same_chain[2]),
    ]
    outcomes = _run(app, batch)
    assert len(outcomes) == len(batch)
    created = {i: o for i, o in enumerate(outcomes) if isinstance(o, tuple) and o[2]}
    assert sorted(created) == [0, 1, 2, 3, 11]
    for i, (row, version, _, events) in created.items():
        assert row["user_id"] == ids[batch[i]["ext"]] and row["method"] == "api"
        assert row["decision"] == batch[i]["decision"] and version["seq"] == 2
        assert len(events) == 1  # this row's webhook event, not another's
    again, existing = outcomes[4], outcomes[5]
    assert again[0]["id"] == created[3][0]["id"] and again[2] is False
    assert existing[2] is False and existing[0]["user_id"] == ids["u-3"]
    assert isinstance(outcomes[6], NotFound) and "nobody" in str(outcomes[6])
    assert isinstance(outcomes[7], NotFound) and "version" in str(outcomes[7])
    assert isinstance(outcomes[8], Conflict) and "superseded" in str(outcomes[8])
    assert isinstance(outcomes[9], Unauthorized)
    assert isinstance(outcomes[10], ValidationError) and "delivery_id" in outcomes[10].fields

    rows = db.execute("SELECT *, xmin::text AS tx FROM acceptances ORDER BY id").fetchall()
    written = rows[1:]
    assert len(written) == 5 and len({r["tx"] for r in written}) == 1  # one transaction
    chain = [r for r in written if r["chain"] == ids["u-0"] % 16]
    assert [r["user_id"] for r in chain] == [ids[u] for u in same_chain[:3]]
    assert chain[1]["prev_hash"] == chain[0]["row_hash"]
    assert chain[2]["prev_hash"] == chain[1]["row_hash"]
    events = db.execute(
        "SELECT acceptance_id, payload FROM host_webhook_events ORDER BY id"
    ).fetchall()
    by_row = {e["acceptance_id"]: e["payload"]["acceptance"]["external_id"] for e in events}
    for i, (row, *_rest) in created.items():
        assert by_row[row["id"]] == batch[i]["ext"]
    context = db.execute("SELECT count(*) AS n FROM acceptance_context").fetchone()["n"]
    assert context == 6
    _verify(app, 6)


def test_the_first_batch_creates_the_chain_heads_it_needs(app, api, api_key, db):
    version = publish_version(app)
    _add_users(api, [f"u-{i}" for i in range(3)])
    assert db.execute("SELECT count(*) AS n FROM evidence_chain_head").fetchone()["n"] == 0
    outcomes = _run(app, [_params(app, api_key, f"u-{i}", version.uid) for i in range(3)])
    assert [o[2] for o in outcomes] == [True, True, True]
    _verify(app, 3)


def test_a_batch_the_database_refuses_is_written_one_request_at_a_time(
    app, api, api_key, db, monkeypatch
):
    from notifier import decisions

    version = publish_version(app)
    _add_users(api, [f"u-{i}" for i in range(4)])
    real = decisions._append
    seen = []

    def refuse_batches_and_u2(conn, batch):
        seen.append(len(batch))
        if len(batch) > 1 or batch[0]["ext"] == "u-2":
            raise psycopg.errors.DataError("refused")
        return real(conn, batch)

    monkeypatch.setattr(decisions, "_append", refuse_batches_and_u2)
    outcomes = _run(app, [_params(app, api_key, f"u-{i}", version.uid) for i in range(4)])
    assert seen == [4, 1, 1, 1, 1]
    assert [o[2] for i, o in enumerate(outcomes) if i != 2] == [True, True, True]
    assert isinstance(outcomes[2], psycopg.errors.DataError)  # only its own request fails
    _verify(app, 3)


def test_batches_for_the_same_user_wait_for_each_other_and_find_the_first_ones_row(
    app, api, api_key, db, monkeypatch
):
    """Two batches that need the same chain head: the second waits in the small locking
    statement, so its decision statement's snapshot already holds the first one's row (no
    second row, no conflict, no retry; one row in the chain)."""
    from notifier import decisions

    version = publish_version(app)
    _add_users(api, ["u-0", "u-1"])
    assert accept(api, "u-0", version).status_code == 201  # the chain heads exist
    calls = []
    real = decisions._append
    monkeypatch.setattr(
        decisions, "_append", lambda conn, batch: (calls.append(1), real(conn, batch))[1]
    )
    chain = db.execute("SELECT id % 16 AS c FROM users WHERE external_id = 'u-1'").fetchone()["c"]
    outcomes = []
    with psycopg.connect(app.config["DATABASE_URL"]) as holder:
        holder.execute("SELECT * FROM evidence_chain_head WHERE chain = %s FOR UPDATE", [chain])
        threads = [
            threading.Thread(
                target=lambda: outcomes.extend(
                    _run(app, [_params(app, api_key, "u-1", version.uid)])
                )
            )
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            waiting = db.execute(
                """SELECT count(*) AS n FROM pg_stat_activity
                    WHERE wait_event_type = 'Lock' AND query LIKE '%notifier_decide(%'"""
            ).fetchone()["n"]
            if waiting == 2:
                break
            time.sleep(0.02)
        assert waiting == 2  # both wait for the head (LOCK_HEADS_SQL, first in the call)
        holder.commit()
    for thread in threads:
        thread.join(10)
    assert len(outcomes) == 2 and all(isinstance(o, tuple) for o in outcomes)
    assert sorted(o[2] for o in outcomes) == [False, True]
    assert outcomes[0][0]["id"] == outcomes[1][0]["id"]
    assert len(calls) == 2
    _verify(app, 2)


def test_concurrent_api_requests_share_batches_and_each_gets_its_own_answer(app, api, db):
    """Through the HTTP view: requests of one process that overlap are written together."""
    version = publish_version(app)
    names = [f"u-{i}" for i in range(80)]
    _add_users(api, names)
    body = {"version_uid": str(version.uid), "ip": "203.0.113.9", "user_agent": "threads"}
    answers: dict[str, int] = {}
    errors = []

    def worker(part):
        client = app.test_client()
        for name in part:
            r = client.post(f"/api/v1/users/{name}/acceptances", json=body, headers=api.headers)
            if r.status_code != 201:
                errors.append((name, r.status_code))
            answers[name] = r.get_json()["id"]  # checked against the rows below

    parts = [names[i::8] for i in range(8)]
    pool = [threading.Thread(target=worker, args=(part,)) for part in parts]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(60)
    assert not errors, errors
    rows = db.execute(
        "SELECT a.id, u.external_id, a.xmin::text AS tx FROM acceptances a "
        "JOIN users u ON u.id = a.user_id"
    ).fetchall()
    assert {r["external_id"]: r["id"] for r in rows} == answers
    assert len({r["tx"] for r in rows}) < len(rows)  # some requests shared a transaction
    _verify(app, 80)


def test_the_batch_statement_is_never_planned_per_call(app, api, api_key, db):
    """With PostgreSQL's default plan choice, each batch length made a custom plan look cheaper,
    so the large statement was planned on every call; its connections keep the generic plan."""
    from notifier import decisions, fastpath

    version = publish_version(app)
    _add_users(api, [f"u-{i}" for i in range(20)])
    sizes, start = [1, 3, 2, 5, 1, 4, 2], 0
    with app.app_context(), fastpath.decisions_connection() as conn:
        for size in sizes:
            batch = [
                _params(app, api_key, f"u-{i}", version.uid) for i in range(start, start + size)
            ]
            rows = decisions._append(conn, batch)
            assert all(row["id"] is not None for row in rows)
            start += size
        # The statement runs inside `pg_temp.notifier_decide`, whose plans no view lists: what
        # keeps it generic is the session's setting, which PL/pgSQL's plan cache follows.
        mode = conn.execute("SHOW plan_cache_mode").fetchone()["plan_cache_mode"]
        calls = conn.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE '%notifier_decide(%'"
        ).fetchone()
    assert mode == "force_generic_plan"
    assert calls is not None and calls["custom_plans"] == 0 and calls["generic_plans"] >= 2
    _verify(app, 18)


def test_any_text_reaches_the_evidence_exactly(app, api, api_key, db):
    """The batch travels as JSON: quotes, backslashes, controls, non-ASCII and characters outside
    the BMP (surrogate pairs in JSON) are stored as sent, and hashed as stored."""
    version = publish_version(app)
    _add_users(api, ["u-0", "u-1"])
    texts = [
        ('He said "yes" \\ \\n \t\n', "fr-CA", "J'accepte « ceci » — d'accord ✓"),
        ("Mozilla/5.0 😀 𝔘 \u2028 \x7f", "zh-Hant-TW", "我同意 🙂 {json} [1, 2] null"),
    ]
    batch = [
        _params(app, api_key, f"u-{i}", version.uid, user_agent=ua, locale=loc, prompt_text=pt)
        for i, (ua, loc, pt) in enumerate(texts)
    ]
    outcomes = _run(app, batch)
    assert all(isinstance(o, tuple) and o[2] for o in outcomes), outcomes
    for (ua, loc, pt), outcome in zip(texts, outcomes, strict=True):
        stored = db.execute(
            "SELECT a.locale, a.prompt_text, c.user_agent FROM acceptances a"
            " JOIN acceptance_context c ON c.acceptance_id = a.id WHERE a.id = %(id)s",
            {"id": outcome[0]["id"]},
        ).fetchone()
        assert stored == {"locale": loc, "prompt_text": pt, "user_agent": ua}
    _verify(app, 2)
