"""The pending answers kept in memory (notifier/pendingcache.py) against the database's answer.

The suite's app waits for committed notifications before each answer (PENDING_CACHE_STRICT);
`eventual` here is a second app on the same database without that wait, as a second gunicorn
worker would be: it must see other processes' commits through notifications alone.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from datetime import UTC, datetime
from urllib.parse import quote

import psycopg
import pytest
from acceptance_helpers import accept, publish_version, put_user

from notifier import create_app, pending, pendingcache
from notifier.views.users_api import bp  # noqa: F401 - the endpoint under test


@pytest.fixture
def eventual(app, database, servers):
    other = create_app(
        {
            "DATABASE_URL": database,
            "REDIS_URL": servers["REDIS_URL"],
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "SERVER_NAME": None,
        }
    )
    yield other
    pendingcache.close(other)
    other.extensions["db"].close()


def _get(client, api_key, external_id):
    return client.get(
        f"/api/v1/users/{external_id}/pending", headers={"Authorization": f"Bearer {api_key}"}
    )


def _until(check, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.01)


def _from_database(app, external_id):
    from notifier import fastpath

    with app.test_request_context("/"), fastpath.connection() as conn:
        return pending.answer(conn, external_id, None, datetime.now(UTC), "http://localhost/")


def _live(app) -> pendingcache.PendingCache:
    with app.app_context():
        cache = pendingcache.for_app(app)
    assert _until(lambda: cache._live), "the listener never connected"
    return cache


def test_answers_come_from_memory_and_match_the_database(app, api, api_key):
    v1 = publish_version(app)
    publish_version(app, slug="terms", title="Terms", mode="notice", verdict="minor")
    publish_version(app, slug="terms", title="Terms", effective_in_days=5)
    for n in range(5):
        put_user(api, f"u-{n}")
    accept(api, "u-1", v1)
    api.post("/api/v1/users/u-2/declines", json={"version_uid": str(v1.uid)})
    cache = _live(app)
    client = app.test_client()
    first = {n: _get(client, api_key, f"u-{n}").get_data(as_text=True) for n in range(5)}
    hits = cache.stats["hits"]
    again = {n: _get(client, api_key, f"u-{n}").get_data(as_text=True) for n in range(5)}
    assert cache.stats["hits"] >= hits + 5, cache.stats
    metrics = client.get("/metrics").get_data(as_text=True)
    served = re.search(r'notifier_pending_answers_total\{source="memory"\} (\d+)', metrics)
    assert served and float(served.group(1)) >= 5
    assert again == first
    for n in range(5):
        assert json.loads(first[n]) == json.loads(_from_database(app, f"u-{n}"))
    assert [i["policy"] for i in json.loads(first[1])["pending"]] == ["terms"]
    [declined] = [i for i in json.loads(first[2])["pending"] if i["policy"] == "privacy"]
    assert declined["declined_at"] is not None


def test_another_process_sees_a_decision_through_its_notification(app, api, api_key, eventual):
    version = publish_version(app)
    put_user(api, "u-1")
    cache = _live(eventual)
    client = eventual.test_client()
    assert len(_get(client, api_key, "u-1").get_json()["pending"]) == 1
    # The first answer starts the warm-up, and the user's own notification (PUT) may still be on
    # its way: once both are through, the user is kept (failed once in a clean-clone CI run on
    # a slow machine, the second answer read from the database).
    with eventual.app_context():
        assert cache.warm_idle.wait(5) and cache.sync()
    _get(client, api_key, "u-1")
    assert cache.stats["hits"] >= 1
    assert accept(api, "u-1", version).status_code == 201  # through the other app
    started = time.monotonic()
    assert _until(lambda: _get(client, api_key, "u-1").get_json()["pending"] == [])
    assert time.monotonic() - started < 1.0
    assert cache.stats["dropped"] >= 1


def test_publishing_reaches_every_process(app, api, api_key, eventual):
    publish_version(app)
    put_user(api, "u-1")
    _live(eventual)
    client = eventual.test_client()
    assert [i["policy"] for i in _get(client, api_key, "u-1").get_json()["pending"]] == ["privacy"]
    publish_version(app, slug="terms", title="Terms", effective_in_days=3)
    assert _until(lambda: len(_get(client, api_key, "u-1").get_json()["pending"]) == 2), (
        "the new version never appeared"
    )


def test_a_revoked_key_and_an_erased_user_are_refused_from_memory(app, api, api_key, eventual):
    from notifier import db

    publish_version(app)
    put_user(api, "u-1")
    put_user(api, "u-2")
    _live(eventual)
    client = eventual.test_client()
    assert _get(client, api_key, "u-2").status_code == 200
    assert app.test_client().delete("/api/v1/users/u-2", headers=api.headers).status_code == 200
    assert _until(lambda: _get(client, api_key, "u-2").status_code == 404)
    assert _get(client, api_key, "u-1").status_code == 200
    with app.app_context(), db.connection() as conn:
        conn.execute("UPDATE api_keys SET revoked_at = now()")
    response = _until(
        lambda: (r := _get(client, api_key, "u-1")).status_code == 401 and r, timeout=5
    )
    assert response and "revoked" in response.get_json()["message"]


def test_the_answer_changes_at_the_effective_date_without_any_write(app, api, api_key):
    put_user(api, "u-1")
    soon = publish_version(app, effective_in_days=1.5 / 86400)  # in 1.5 seconds
    _live(app)
    client = app.test_client()
    [item] = _get(client, api_key, "u-1").get_json()["pending"]
    assert item["version"] == soon.seq and item["in_force"] is False
    assert item["blocking"] is False
    time.sleep(max(0.0, (soon.effective_at - datetime.now(UTC)).total_seconds()) + 0.05)
    [item] = _get(client, api_key, "u-1").get_json()["pending"]
    assert item["in_force"] is True and item["blocking"] is True


def test_a_load_overtaken_by_a_commit_is_not_kept(app, api, api_key, monkeypatch):
    version = publish_version(app)
    put_user(api, "u-1")
    cache = _live(app)
    client = app.test_client()
    _get(client, api_key, "u-1")  # the catalog is installed, and a warm-up starts
    # Let the warm-up keep u-1 first: were it to finish after the clear below, u-1 would be
    # answered from memory without the load this test is about.
    assert cache.warm_idle.wait(5)
    cache._users.clear()
    cache._ids.clear()
    real = pendingcache.load_user

    def slow_load(conn, catalog, external_id):
        state = real(conn, catalog, external_id)  # read before the decision below
        accept(api, "u-1", version)
        cache.sync()  # the decision's notification arrives while this load is in flight
        return state

    monkeypatch.setattr(pendingcache, "load_user", slow_load)
    with app.test_request_context("/"):
        catalog = cache.catalog(datetime.now(UTC))
        stale = cache.user(catalog, "u-1")
    monkeypatch.setattr(pendingcache, "load_user", real)
    assert version.id not in stale.accepted  # what the overtaken read saw…
    assert "u-1" not in cache._users  # …was not kept
    assert _get(client, api_key, "u-1").get_json()["pending"] == []


def test_without_its_listener_every_answer_comes_from_the_database(app, api, api_key, database):
    version = publish_version(app)
    put_user(api, "u-1")
    cache = _live(app)
    client = app.test_client()
    assert len(_get(client, api_key, "u-1").get_json()["pending"]) == 1
    with psycopg.connect(database, autocommit=True) as conn:
        killed = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query LIKE 'LISTEN notifier_pending%%' OR application_name = %s",
            (pendingcache.LISTENER_NAME,),
        ).fetchall()
    assert killed
    assert _until(lambda: not cache._live, timeout=3), "the listener did not notice"
    loads = cache.stats["loads"]
    assert accept(api, "u-1", version).status_code == 201
    assert _get(client, api_key, "u-1").get_json()["pending"] == []
    assert _until(lambda: cache._live, timeout=10), "the listener did not reconnect"
    assert _get(client, api_key, "u-1").get_json()["pending"] == []
    assert cache.stats["loads"] >= loads


def test_the_cache_is_bounded(app, api, api_key):
    app.config["PENDING_CACHE_USERS"] = 3
    publish_version(app)
    for n in range(6):
        put_user(api, f"u-{n}")
    cache = _live(app)
    client = app.test_client()
    for n in range(6):
        assert _get(client, api_key, f"u-{n}").status_code == 200
    assert len(cache._users) <= 3
    assert set(cache._ids.values()) == set(cache._users)


def test_disabled_cache_answers_the_same(app, api, api_key):
    version = publish_version(app)
    put_user(api, "u-1")
    first = api.get("/api/v1/users/u-1/pending").get_json()
    app.config["PENDING_CACHE"] = False
    assert api.get("/api/v1/users/u-1/pending").get_json() == first
    accept(api, "u-1", version)
    assert api.get("/api/v1/users/u-1/pending").get_json()["pending"] == []


def test_random_histories_answer_as_the_database_does(app, api, api_key):
    """Many users, decisions, modes and grace periods: memory and database agree on each."""
    from notifier import db

    rng = random.Random(7)
    versions = [
        publish_version(app, effective_in_days=-40),
        publish_version(app, effective_in_days=-5),
        publish_version(app, slug="terms", title="Terms", mode="notice", verdict="minor"),
        publish_version(app, slug="terms", title="Terms", effective_in_days=9),
        publish_version(app, slug="cookies", title="Cookies", mode="none", verdict="minor"),
        publish_version(app, slug="cookies", title="Cookies", effective_in_days=2),
    ]
    with app.app_context(), db.connection() as conn:
        conn.execute(
            "INSERT INTO version_grace (version_id, grace) VALUES (%s, interval '9 days')",
            (versions[1].id,),
        )
    users = [f"user {n} ü+é" for n in range(30)]
    for n, external_id in enumerate(users):
        put_user(api, quote(external_id), email=f"user{n}@example.com")
    for external_id in users:
        for version in rng.sample(versions, rng.randint(0, 4)):
            kind = rng.choice(["acceptances", "declines"])
            api.post(
                f"/api/v1/users/{quote(external_id)}/{kind}",
                json={"version_uid": str(version.uid)},
            )
    _live(app)
    client = app.test_client()
    for external_id in users:
        cached = _get(client, api_key, quote(external_id))
        assert cached.status_code == 200, cached.get_data(as_text=True)
        assert cached.get_json() == json.loads(_from_database(app, external_id))


def test_notifications_name_the_changed_users(app, api, database):
    """The triggers: a decision names its user; big updates are batched, then collapse."""
    from notifier import acceptances, audience, db, hostkeys

    version = publish_version(app)
    for n in range(3):
        put_user(api, f"u-{n}")
    with psycopg.connect(database, autocommit=True) as listen:
        listen.execute("LISTEN notifier_pending")
        with app.app_context(), db.connection() as conn:
            conn.execute("UPDATE policy_versions SET summary = 'draft' WHERE published_at IS NULL")
            conn.execute("UPDATE api_keys SET last_used_at = now()")
            ids = [r["id"] for r in conn.execute("SELECT id FROM users ORDER BY id")]
            conn.execute("UPDATE users SET name = 'Renamed' WHERE id = %s", (ids[0],))
            conn.execute(
                "INSERT INTO users (external_id) "
                "SELECT 'bulk-' || n FROM generate_series(1, 1200) n"
            )
            conn.execute("UPDATE users SET segment = 'b' WHERE external_id LIKE 'bulk-%%'")
            conn.execute(
                "INSERT INTO users (external_id) "
                "SELECT 'more-' || n FROM generate_series(1, 5000) n"
            )
            conn.execute("UPDATE users SET segment = 'c'")
            user = audience.get_user(conn, "u-2", None)
            found = acceptances.find_version(conn, {"version_uid": str(version.uid)})
            with conn.transaction():  # the widget's and the email link's path
                acceptances.record(
                    conn, user, found, decision="accepted", method="click", now=datetime.now(UTC)
                )
            key_id = conn.execute("SELECT id FROM api_keys").fetchone()["id"]
            hostkeys.settings(conn, key_id)  # the key page's view: creates the row once…
            hostkeys.settings(conn, key_id)  # …and then changes nothing
            conn.execute("UPDATE api_key_settings SET webhook_url = 'https://h.example/'")
        accept(api, "u-1", version)  # the API's: announced on Redis, not here
        notes = [n.payload for n in listen.notifies(timeout=1.0)]
    assert notes[0] == f"u {ids[0]}"  # not the draft edit, not last_used_at
    bulk = notes[1:4]
    assert sorted(len(m.split()) - 1 for m in bulk) == [200, 500, 500]
    assert notes[4] == "all"  # 6,203 users in one statement
    assert notes[5] == f"u {ids[2]}"
    assert len(notes) == 6


def test_many_threads_reading_and_deciding_end_consistent(app, api, api_key, eventual):
    versions = [publish_version(app), publish_version(app, slug="terms", title="Terms")]
    users = [f"u-{n}" for n in range(40)]
    for external_id in users:
        put_user(api, external_id)
    _live(eventual)
    reader = eventual.test_client()
    errors = []

    def read():
        try:
            for _ in range(60):
                response = _get(reader, api_key, random.choice(users))
                assert response.status_code == 200
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for external_id in users[:20]:
        for version in versions:
            assert accept(api, external_id, version).status_code == 201
    for thread in threads:
        thread.join()
    assert not errors

    def settled():
        return all(
            (_get(reader, api_key, u).get_json()["pending"] == []) == (u in users[:20])
            for u in users
        )

    assert _until(settled, timeout=5)


def test_api_decisions_are_announced_on_redis_and_through_postgres_without_it(
    app, api, api_key, eventual, servers, monkeypatch
):
    from redis import Redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    from notifier import queues

    versions = [publish_version(app), publish_version(app, slug="terms", title="Terms")]
    put_user(api, "u-1")
    cache = _live(eventual)
    client = eventual.test_client()
    with Redis.from_url(servers["REDIS_URL"]).pubsub() as pubsub:
        pubsub.subscribe("notifier:pending")
        assert pubsub.get_message(timeout=2)["type"] == "subscribe"
        assert len(_get(client, api_key, "u-1").get_json()["pending"]) == 2
        assert accept(api, "u-1", versions[0]).status_code == 201
        message = pubsub.get_message(timeout=2)
        user_id = int(message["data"].decode().split()[1])
    assert _until(lambda: len(_get(client, api_key, "u-1").get_json()["pending"]) == 1)

    class Down:
        def publish(self, *args):
            raise RedisConnectionError("Redis is down")

    with app.app_context():
        real = queues.redis_connection()
    monkeypatch.setattr(queues, "redis_connection", lambda app=None: Down())
    dropped = cache.stats["dropped"]
    assert accept(api, "u-1", versions[1]).status_code == 201  # announced through PostgreSQL
    monkeypatch.setattr(queues, "redis_connection", lambda app=None: real)
    assert _until(lambda: _get(client, api_key, "u-1").get_json()["pending"] == [])
    assert cache.stats["dropped"] > dropped
    assert user_id > 0


def test_without_its_redis_subscription_every_answer_comes_from_the_database(
    app, api, api_key, eventual, servers
):
    from redis import Redis

    version = publish_version(app)
    put_user(api, "u-1")
    cache = _live(eventual)
    client = eventual.test_client()
    assert len(_get(client, api_key, "u-1").get_json()["pending"]) == 1
    redis = Redis.from_url(servers["REDIS_URL"])
    assert redis.client_kill_filter(_type="pubsub") >= 1
    assert _until(lambda: not cache._live, timeout=3), "the subscriber did not notice"
    assert accept(api, "u-1", version).status_code == 201
    assert _get(client, api_key, "u-1").get_json()["pending"] == []
    assert _until(lambda: cache._live, timeout=10), "the subscriber did not come back"
    assert _get(client, api_key, "u-1").get_json()["pending"] == []


def test_a_message_it_cannot_read_drops_everything(app, api, api_key):
    publish_version(app)
    put_user(api, "u-1")
    cache = _live(app)
    _get(app.test_client(), api_key, "u-1")
    assert cache._catalog is not None
    cache._handle("u 12 x")
    assert cache._catalog is None and cache._users == {}


def test_kept_state_is_read_again_after_the_maximum_age(app, api, api_key, monkeypatch):
    app.config["PENDING_CACHE_MAX_AGE"] = 3
    version = publish_version(app)
    cache = _live(app)
    client = app.test_client()
    put_user(api, "u-0")
    _get(client, api_key, "u-0")  # the catalog is installed and warmed (with no one to load)
    assert _until(lambda: cache._catalog is not None and not cache._warm_event.is_set())
    time.sleep(0.2)
    put_user(api, "u-1")  # read on its first request, so its age starts there (no spread)
    _get(client, api_key, "u-1")
    hits = cache.stats["hits"]
    _get(client, api_key, "u-1")
    assert cache.stats["hits"] == hits + 1
    # A decision nobody announces, as if its process died between the commit and the publish.
    monkeypatch.setattr(pendingcache, "announce_decision", lambda *user_ids: None)
    assert accept(api, "u-1", version).status_code == 201
    assert len(_get(client, api_key, "u-1").get_json()["pending"]) == 1  # stale, for now
    time.sleep(3.1)
    assert _get(client, api_key, "u-1").get_json()["pending"] == []


def test_a_repeated_decision_is_announced_again(app, api, api_key, eventual, monkeypatch):
    version = publish_version(app)
    put_user(api, "u-1")
    announced = []
    real = pendingcache.announce_decision
    monkeypatch.setattr(
        pendingcache,
        "announce_decision",
        lambda *user_ids: (announced.append(user_ids), real(*user_ids)),
    )
    assert accept(api, "u-1", version).status_code == 201
    assert accept(api, "u-1", version).status_code == 200  # a client's retry
    assert len(announced) == 2 and announced[0] == announced[1]


def test_a_silent_redis_subscription_is_noticed_by_its_missing_echo(app, monkeypatch):
    """A subscription only receives; if its server stops answering it would wait forever, so it
    publishes an echo every few seconds and drops the feed when the echo does not come back."""
    from redis import Redis

    class EchoLost(Redis):
        def publish(self, channel, message):
            return 0 if str(message).startswith("ping ") else super().publish(channel, message)

    monkeypatch.setattr(pendingcache, "Redis", EchoLost)
    monkeypatch.setattr(pendingcache, "_HEARTBEAT_SECONDS", 0.2)
    monkeypatch.setattr(pendingcache, "_ECHO_TIMEOUT_SECONDS", 0.5)
    cache = _live(app)
    assert cache._links["redis"] is True
    assert _until(lambda: not cache._links["redis"], timeout=5), "the lost echo went unnoticed"
    monkeypatch.setattr(pendingcache, "Redis", Redis)  # echoes come back: the feed recovers
    time.sleep(1.0)  # the connection opened before the fix loses its echo once more
    assert _until(lambda: cache._live, timeout=10)
    resets = cache.stats["resets"]
    time.sleep(1.5)  # several heartbeats, each echoed
    assert cache._live and cache.stats["resets"] == resets
