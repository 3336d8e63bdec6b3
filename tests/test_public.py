"""Public pages: in force, upcoming banner, archive, permalinks, redline, Atom feed, caching."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from helpers import POLICY_V1, POLICY_V2, backdate, create_draft, create_policy, publish

ATOM = "{http://www.w3.org/2005/Atom}"


def _two_versions(client, admin, db):
    """Version 1 in force since 10 days ago, version 2 upcoming in 30 days."""
    policy_id = create_policy(client, admin)
    v1 = create_draft(client, admin, policy_id, POLICY_V1)
    assert (
        publish(client, admin, policy_id, v1, days=1, summary="First version.").status_code == 302
    )
    backdate(db, v1, 11)
    v2 = create_draft(client, admin, policy_id, POLICY_V2)
    assert (
        publish(
            client, admin, policy_id, v2, days=30, summary="We keep data for 90 days."
        ).status_code
        == 302
    )
    return policy_id


def test_policy_page_shows_the_version_in_force_and_announces_the_upcoming_one(client, admin, db):
    _two_versions(client, admin, db)
    client.post("/admin/signout", data={"csrf_token": admin["csrf"]})
    page = client.get("/policies/privacy")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "We keep account data for 30 days" in html  # v1 is in force
    assert "Effective " in html and "Last updated " in html
    assert "This policy changes on" in html and "We keep data for 90 days." in html
    assert 'href="/policies/privacy/versions/2/changes"' in html


def test_archive_lists_every_published_version_with_dates_and_summary(client, admin, db):
    _two_versions(client, admin, db)
    create_draft(client, admin, 1, POLICY_V2 + "\nDraft only.\n")
    html = client.get("/policies/privacy/versions").get_data(as_text=True)
    assert "Version 2" in html and "Version 1" in html and "Version 3" not in html
    assert "upcoming" in html and "in force" in html
    assert "First version." in html


def test_permalinks_never_change_and_drafts_stay_private(client, admin, db):
    _two_versions(client, admin, db)
    create_draft(client, admin, 1, POLICY_V2 + "\nSecret draft.\n")
    v1 = client.get("/policies/privacy/versions/1")
    assert v1.status_code == 200 and "30 days" in v1.get_data(as_text=True)
    assert client.get("/policies/privacy/versions/3").status_code == 404
    assert client.get("/policies/nope").status_code == 404
    assert "No policy with the slug" in client.get("/policies/nope").get_data(as_text=True)


def test_changes_page_shows_the_redline_against_the_previous_version(client, admin, db):
    _two_versions(client, admin, db)
    html = client.get("/policies/privacy/versions/2/changes").get_data(as_text=True)
    assert "<del" in html and "<ins" in html and "90" in html
    first = client.get("/policies/privacy/versions/1/changes").get_data(as_text=True)
    assert "first version" in first


def test_atom_feed_lists_versions_with_stable_ids(client, admin, db):
    _two_versions(client, admin, db)
    response = client.get("/policies/privacy/feed.atom")
    assert response.mimetype == "application/atom+xml"
    feed = ET.fromstring(response.data)
    entries = feed.findall(f"{ATOM}entry")
    ids = [e.findtext(f"{ATOM}id") for e in entries]
    assert len(ids) == 2 and all(i.startswith("urn:uuid:") for i in ids)
    uids = [str(r["uid"]) for r in db.execute("SELECT uid FROM policy_versions ORDER BY seq DESC")]
    assert ids == [f"urn:uuid:{u}" for u in uids]
    assert (
        ET.fromstring(client.get("/policies/privacy/feed.atom").data)
        .findall(f"{ATOM}entry")[0]
        .findtext(f"{ATOM}id")
        == ids[0]
    )


def test_published_pages_send_etags_and_answer_304(client, admin, db):
    _two_versions(client, admin, db)
    for path in (
        "/policies/privacy",
        "/policies/privacy/versions/1",
        "/policies/privacy/versions/2/changes",
        "/policies/privacy/feed.atom",
    ):
        first = client.get(path)
        assert first.headers.get("ETag"), path
        assert "max-age" in first.headers["Cache-Control"]
        again = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304, path
    assert (
        "immutable" in client.get("/policies/privacy/versions/2/changes").headers["Cache-Control"]
    )


def test_healthz_reports_both_servers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "redis": "ok"}


def test_healthz_answers_503_when_redis_or_postgres_is_down(app, database, servers, tmp_path):
    from notifier import create_app

    no_redis = create_app(
        {"DATABASE_URL": database, "REDIS_URL": f"unix://{tmp_path}/none.sock", "TESTING": True}
    )
    body = no_redis.test_client().get("/healthz")
    assert body.status_code == 503 and body.get_json()["redis"].startswith("down")
    assert body.get_json()["database"] == "ok"
    no_db = create_app(
        {
            "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
            "REDIS_URL": servers["REDIS_URL"],
            "TESTING": True,
        }
    )
    body = no_db.test_client().get("/healthz")
    assert body.status_code == 503 and body.get_json()["database"].startswith("down")
    for extra in (no_redis, no_db):
        extra.extensions["db"].close()
