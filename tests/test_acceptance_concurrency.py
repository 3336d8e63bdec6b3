"""The API's decision write path under concurrency, bad keys and stale planner statistics."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from acceptance_helpers import accept, publish_version, put_user


def test_concurrent_acceptances_keep_the_chain_valid_and_one_row_per_decision(app, api, db):
    version = publish_version(app)
    users = [f"c-{i}" for i in range(40)]
    response = api.post("/api/v1/users/bulk", json={"users": [{"external_id": u} for u in users]})
    assert response.status_code == 200, response.get_json()
    body = {"version_uid": str(version.uid), "ip": "203.0.113.9", "user_agent": "threads"}
    results: list[tuple[str, int, int]] = []
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        client = app.test_client()
        try:
            # Every user is accepted by two threads, in different orders.
            for user in users[offset:] + users[:offset]:
                r = client.post(f"/api/v1/users/{user}/acceptances", json=body, headers=api.headers)
                results.append((user, r.status_code, r.get_json()["id"]))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n * 20,)) for n in range(2)]
    threads += [threading.Thread(target=worker, args=(n * 10 + 5,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sorted(s for _, s, _ in results if s != 200) == [201] * 40
    ids = {}
    for user, _, row_id in results:
        assert ids.setdefault(user, row_id) == row_id  # every answer names the same row
    rows = db.execute("SELECT * FROM acceptances ORDER BY id").fetchall()
    assert len(rows) == 40 and {r["id"] for r in rows} == set(ids.values())
    heads: dict[int, str] = {}
    for row in rows:  # in id order, each chain links to its previous row
        assert row["prev_hash"] == heads.get(row["chain"], "0" * 64)
        heads[row["chain"]] = row["row_hash"]
    result = app.test_cli_runner().invoke(args=["evidence", "verify"])
    assert result.exit_code == 0 and "Evidence chain OK: 40 rows" in result.output


def test_bad_key_is_401_before_a_bad_body_and_revoked_keys_write_nothing(app, api, db, client):
    version = publish_version(app)
    put_user(api, "u-1")
    bad = {"Authorization": "Bearer pn_nope"}
    r = client.post("/api/v1/users/u-1/acceptances", json={"ip": "x"}, headers=bad)
    assert r.status_code == 401
    r = client.post("/api/v1/users/u-1/acceptances", json={"ip": "x"}, headers=api.headers)
    assert r.status_code == 422 and "ip" in r.get_json()["fields"]
    r = client.post(
        "/api/v1/users/u-1/acceptances", json={"version_uid": "not-a-uuid"}, headers=api.headers
    )
    assert r.status_code == 404
    db.execute("UPDATE api_keys SET revoked_at = now()")
    r = client.post(
        "/api/v1/users/u-1/acceptances",
        json={"version_uid": str(version.uid)},
        headers=api.headers,
    )
    assert r.status_code == 401
    assert db.execute("SELECT count(*) AS n FROM acceptances").fetchone()["n"] == 0


def test_existing_decision_is_looked_up_by_user_even_with_empty_statistics(app, api, db):
    """Analyzed while empty, the table looked tiny and the planner walked the version's index."""
    from notifier import decisions

    version = publish_version(app)
    db.execute("ANALYZE acceptances")  # as the bench does after loading users: empty
    for i in range(30):
        put_user(api, f"u-{i}")
        assert accept(api, f"u-{i}", version).status_code == 201
    with app.app_context():  # the subject key needs the app's PSEUDONYM_KEY
        params = decisions.decide_params(
            "0" * 64,
            "u-1",
            decisions.VersionRef(uid=str(version.uid)),
            decision="accepted",
            now=datetime.now(UTC),
            ip=None,
            user_agent="",
            locale=None,
            prompt_text=None,
            delivery_id=None,
        )
    with db.transaction():
        plan = "\n".join(
            r["QUERY PLAN"]
            for r in db.execute(
                "EXPLAIN " + decisions.DECIDE_SQL, decisions.batch_params([params])
            ).fetchall()
        )
    assert "using acceptances_version" not in plan, plan
