"""Evidence: append-only in the database, hash-chained, verified by the CLI, exported."""

from __future__ import annotations

import threading

import psycopg
import pytest
from acceptance_helpers import accept, publish_version, put_user


def _run_verify(app):
    return app.test_cli_runner().invoke(args=["evidence", "verify"])


def test_database_refuses_update_and_delete_of_evidence(app, api, db):
    version = publish_version(app)
    put_user(api, "u-1")
    assert accept(api, "u-1", version).status_code == 201
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute("UPDATE acceptances SET method = 'click'")
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute("DELETE FROM acceptances")
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute("UPDATE acceptance_context SET ip = '10.0.0.1'")
    with pytest.raises(psycopg.errors.CheckViolation):  # context goes only with an erased user
        db.execute("DELETE FROM acceptance_context")
    assert db.execute("SELECT count(*) AS n FROM acceptance_context").fetchone()["n"] == 1


def test_chain_links_rows_and_verify_passes(app, api, db):
    version = publish_version(app)
    for i in range(5):
        put_user(api, f"u-{i}")
        assert accept(api, f"u-{i}", version).status_code == 201
    rows = db.execute("SELECT * FROM acceptances ORDER BY id").fetchall()
    by_chain: dict[int, str] = {}
    for row in rows:
        assert row["prev_hash"] == by_chain.get(row["chain"], "0" * 64)
        by_chain[row["chain"]] = row["row_hash"]
    result = _run_verify(app)
    assert result.exit_code == 0, result.output
    assert "Evidence chain OK: 5 rows" in result.output


def _tamper(db, sql, params=None):
    db.execute("ALTER TABLE acceptances DISABLE TRIGGER acceptances_append_only")
    db.execute("ALTER TABLE acceptance_context DISABLE TRIGGER acceptance_context_guard")
    try:
        db.execute(sql, params or {})
    finally:
        db.execute("ALTER TABLE acceptances ENABLE TRIGGER acceptances_append_only")
        db.execute("ALTER TABLE acceptance_context ENABLE TRIGGER acceptance_context_guard")


@pytest.mark.parametrize(
    ("sql", "expect"),
    [
        ("UPDATE acceptances SET method = 'click' WHERE id = %(id)s", "row_hash does not match"),
        (
            "UPDATE acceptance_context SET user_agent = 'forged' WHERE acceptance_id = %(id)s",
            "differ from what was recorded",
        ),
        ("DELETE FROM acceptance_context WHERE acceptance_id = %(id)s", "context is missing"),
    ],
)
def test_verify_names_the_first_tampered_row(app, api, db, sql, expect):
    version = publish_version(app)
    for i in range(3):
        put_user(api, f"u-{i}")
        accept(api, f"u-{i}", version)
    target = db.execute("SELECT id FROM acceptances ORDER BY id OFFSET 1 LIMIT 1").fetchone()["id"]
    _tamper(db, sql, {"id": target})
    result = _run_verify(app)
    assert result.exit_code == 1
    assert f"row {target}" in result.output and expect in result.output


def test_verify_detects_a_removed_row(app, api, db):
    version = publish_version(app)
    # Users 1 and 17 share chain 1 (16 chains): removing the first breaks the second's link.
    for i in range(17):
        put_user(api, f"u-{i}")
    ids = [r["id"] for r in db.execute("SELECT id FROM users WHERE id IN (1, 17)")]
    ext = {r["id"]: r["external_id"] for r in db.execute("SELECT id, external_id FROM users")}
    for user_id in ids:
        accept(api, ext[user_id], version)
    first = db.execute("SELECT id FROM acceptances ORDER BY id LIMIT 1").fetchone()["id"]
    _tamper(db, "DELETE FROM acceptance_context WHERE acceptance_id = %(id)s", {"id": first})
    _tamper(db, "DELETE FROM acceptances WHERE id = %(id)s", {"id": first})
    result = _run_verify(app)
    assert result.exit_code == 1 and "prev_hash does not match" in result.output


def test_concurrent_acceptances_keep_a_valid_chain_and_one_row_each(app, api, db, client):
    version = publish_version(app)
    for i in range(8):
        put_user(api, f"u-{i}")
    statuses = []

    def worker(i):
        with app.test_client() as c:
            for _ in range(2):  # each user twice: the second is a 200 with the same row
                r = c.post(
                    f"/api/v1/users/u-{i}/acceptances",
                    headers=api.headers,
                    json={"version_uid": str(version.uid)},
                )
                statuses.append(r.status_code)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] * 8 + [201] * 8
    assert db.execute("SELECT count(*) AS n FROM acceptances").fetchone()["n"] == 8
    assert _run_verify(app).exit_code == 0
