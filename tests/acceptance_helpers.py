"""Shared setup for the acceptance tests: published policy versions and users, made directly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import helpers

from policy_versions import store


def publish_version(
    app,
    *,
    slug="privacy",
    title="Privacy Policy",
    body=helpers.POLICY_V1,
    effective_in_days=-10,
    mode="explicit",
    verdict="material",
    summary=None,
):
    """Publish a version effective `effective_in_days` from now (negative: already in force).

    Published "as of" a month before its effective date, as the demo loader does, so versions in
    force need no backdating.
    """
    from notifier import db

    now = datetime.now(UTC)
    effective_at = now + timedelta(days=effective_in_days)
    with app.app_context(), db.connection() as conn, conn.transaction():
        policy = store.find_policy(conn, slug) or store.create_policy(conn, slug, title)
        draft = store.create_draft(conn, policy.id, body, created_by=None, max_bytes=1_000_000)
        version = store.publish(
            conn,
            draft.id,
            effective_at=effective_at,
            summary=summary or f"Summary of {slug} changes.",
            published_by=None,
            verdict=verdict,
            override_reason=None if verdict == draft.suggested_verdict else "test override",
            acceptance_mode=mode,
            now=min(now, effective_at - timedelta(days=30)),
        )
    return version


def put_user(api, external_id="u-1", **fields):
    body = {"email": f"{external_id}@example.com", "name": "Ann Example", "locale": "en"} | fields
    response = api.put(f"/api/v1/users/{external_id}", json=body)
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def accept(api, external_id, version, **extra):
    body = {"version_uid": str(version.uid), "ip": "203.0.113.7", "user_agent": "pytest/1"}
    return api.post(f"/api/v1/users/{external_id}/acceptances", json=body | extra)
