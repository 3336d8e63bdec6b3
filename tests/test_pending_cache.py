"""The API's per-process cache of candidate versions for GET …/pending is never stale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import helpers
from acceptance_helpers import accept, publish_version, put_user

from notifier import acceptances, auth, fastpath


def _cached(app):
    return app.extensions.get("pending_candidates", {}).get("current")


def _full(app, key, external_id, now):
    """The answer of the uncached statement, for comparison."""
    with app.test_request_context("/"), fastpath.connection() as conn:
        row = conn.execute(
            acceptances.KEYED_PENDING_SQL,
            {"sha": auth._digest(key), "ext": external_id, "now": now},
        ).fetchone()
        return acceptances.pending_json(row["items"], external_id, now)


def _via_cache(app, key, external_id, now):
    with app.test_request_context("/"), fastpath.connection() as conn:
        return acceptances.pending_for_key(conn, auth._digest(key), external_id, now)


def _policies(api, user="u-1"):
    return [
        (i["policy"], i["version"])
        for i in api.get(f"/api/v1/users/{user}/pending").json["pending"]
    ]


def test_publishing_invalidates_the_cache_at_once(app, api):
    publish_version(app, effective_in_days=-5)
    put_user(api, "u-1")
    assert _policies(api) == [("privacy", 1)]
    first = _cached(app)
    assert first is not None  # the cached path answered
    publish_version(app, slug="terms", title="Terms", effective_in_days=10)
    assert _policies(api) == [("privacy", 1), ("terms", 1)]
    assert _cached(app) is None or _cached(app).gen != first.gen
    publish_version(app, body=helpers.POLICY_V2, effective_in_days=20)
    assert _policies(api) == [("privacy", 1), ("terms", 1)]  # v1 in force comes first
    assert accept(api, "u-1", _version(app, "privacy", 1)).status_code == 201
    assert _policies(api) == [("privacy", 2), ("terms", 1)]  # then the upcoming one


def test_a_decision_shows_at_once_although_the_versions_are_cached(app, api):
    version = publish_version(app, effective_in_days=-5)
    put_user(api, "u-1")
    put_user(api, "u-2")
    assert _policies(api, "u-1") == [("privacy", 1)]
    assert _cached(app) is not None
    gen = _cached(app).gen
    assert (
        api.post("/api/v1/users/u-1/declines", json={"version_uid": str(version.uid)}).status_code
        == 201
    )
    [item] = api.get("/api/v1/users/u-1/pending").json["pending"]
    assert item["declined_at"] is not None
    assert accept(api, "u-1", version).status_code == 201
    assert _policies(api, "u-1") == []
    assert _policies(api, "u-2") == [("privacy", 1)]
    assert _cached(app).gen == gen  # decisions never touch the versions' generation


def test_direct_sql_on_versions_and_grace_invalidates_too(app, api, db):
    version = publish_version(app, effective_in_days=3)
    put_user(api, "u-1")
    [item] = api.get("/api/v1/users/u-1/pending").json["pending"]
    assert item["in_force"] is False and _cached(app) is not None
    helpers.backdate(db, version.id, 4)
    [item] = api.get("/api/v1/users/u-1/pending").json["pending"]
    assert item["in_force"] is True and item["blocking"] is True
    db.execute(
        "INSERT INTO version_grace (version_id, grace) VALUES (%(v)s, interval '7 days')",
        {"v": version.id},
    )
    [item] = api.get("/api/v1/users/u-1/pending").json["pending"]
    assert item["blocking"] is False
    db.execute("UPDATE policies SET title = 'Privacy Notice' WHERE slug = 'privacy'")
    [item] = api.get("/api/v1/users/u-1/pending").json["pending"]
    assert item["title"] == "Privacy Notice"


def test_time_passing_an_effective_date_refreshes_the_window(app, api, api_key):
    publish_version(app, effective_in_days=-40)
    publish_version(app, body=helpers.POLICY_V2, effective_in_days=10)
    publish_version(app, slug="cookies", title="Cookies", effective_in_days=5, mode="none")
    put_user(api, "u-1")
    put_user(api, "u-2")
    accept(api, "u-2", _version(app, "privacy", 1))
    now = datetime.now(UTC)
    for days in (-60, -39, 0, 6, 11, 400, 0, -60):
        when = now + timedelta(days=days)
        for user in ("u-1", "u-2", "nobody"):
            try:
                expected = _full(app, api_key, user, when)
            except TypeError:  # unknown user: the full statement returns no items
                expected = None
            if expected is None:
                assert api.get(f"/api/v1/users/{user}/pending").status_code == 404
                continue
            assert _via_cache(app, api_key, user, when) == expected, (days, user)
            cached = _cached(app)
            assert cached is not None and cached.covers(when)


def test_without_the_generation_row_nothing_is_cached(app, api, db):
    publish_version(app, effective_in_days=-5)
    put_user(api, "u-1")
    db.execute("DELETE FROM pending_generation")
    assert _policies(api) == [("privacy", 1)]
    assert _cached(app) is None
    publish_version(app, slug="terms", title="Terms", effective_in_days=-1)  # the row is back
    assert _policies(api) == [("privacy", 1), ("terms", 1)]
    assert _policies(api) == [("privacy", 1), ("terms", 1)]
    assert _cached(app) is not None


def test_generation_is_written_at_commit_and_never_repeats(app, db):
    before = db.execute("SELECT gen FROM pending_generation").fetchone()["gen"]
    publish_version(app, effective_in_days=-5)
    after = db.execute("SELECT gen FROM pending_generation").fetchone()["gen"]
    assert after > before
    db.execute("TRUNCATE pending_generation")
    db.execute("UPDATE policies SET title = title")
    assert db.execute("SELECT gen FROM pending_generation").fetchone()["gen"] > after


def _version(app, slug, seq):
    from notifier import db
    from policy_versions import store

    with app.app_context(), db.connection() as conn:
        policy = store.find_policy(conn, slug)
        row = conn.execute(
            "SELECT uid FROM policy_versions WHERE policy_id = %(p)s AND seq = %(s)s",
            {"p": policy.id, "s": seq},
        ).fetchone()

    class Ref:
        uid = row["uid"]

    return Ref
