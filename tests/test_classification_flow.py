"""The classifier in the product: suggestion on save, override with a reason, comparisons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from helpers import POLICY_V1, create_draft, create_policy, publish

SELLS = POLICY_V1 + "\n## 3. Sharing\n\nWe do not sell your personal data.\n"
SELLS_NOW = SELLS.replace("We do not sell", "We sell")
TYPO = SELLS.replace("account data", "acount data")


def _published_v1(client, admin, body=SELLS):
    policy_id = create_policy(client, admin)
    v1 = create_draft(client, admin, policy_id, body)
    assert publish(client, admin, policy_id, v1, days=1).status_code == 302
    return policy_id


def test_saving_a_draft_stores_the_suggestion_with_reasons(client, admin, db):
    policy_id = _published_v1(client, admin)
    v2 = create_draft(client, admin, policy_id, SELLS_NOW)
    row = db.execute("SELECT * FROM policy_versions WHERE id = %(id)s", {"id": v2}).fetchone()
    assert row["suggested_verdict"] == "material"
    reasons = row["classification"]["reasons"]
    assert any(r["verdict"] == "material" and "do not" in r["deleted"] for r in reasons)
    page = client.get(f"/admin/policies/{policy_id}/versions/{v2}").get_data(as_text=True)
    assert "Suggested: material change" in page
    assert "3. Sharing" in page
    first = db.execute("SELECT suggested_verdict FROM policy_versions WHERE seq = 1").fetchone()
    assert first["suggested_verdict"] is None  # nothing to compare a first version with


def test_overriding_the_suggestion_needs_a_reason_that_is_kept(client, admin, db):
    policy_id = _published_v1(client, admin)
    v2 = create_draft(client, admin, policy_id, SELLS_NOW)
    refused = publish(client, admin, policy_id, v2, days=40, verdict="minor")
    assert refused.status_code == 422
    assert "needs a justification" in refused.get_data(as_text=True)
    assert (
        db.execute(
            "SELECT published_at FROM policy_versions WHERE id = %(id)s", {"id": v2}
        ).fetchone()["published_at"]
        is None
    )
    ok = publish(
        client,
        admin,
        policy_id,
        v2,
        days=40,
        verdict="minor",
        override_reason="Legal confirmed: we only 'sell' in the CCPA sense already disclosed.",
    )
    assert ok.status_code == 302
    row = db.execute("SELECT * FROM policy_versions WHERE id = %(id)s", {"id": v2}).fetchone()
    assert (row["verdict"], row["suggested_verdict"]) == ("minor", "material")
    assert row["verdict_override_reason"].startswith("Legal confirmed")
    audit = db.execute("""
        SELECT details FROM audit_log WHERE action = 'version.published' ORDER BY id DESC LIMIT 1
    """).fetchone()["details"]
    assert audit["verdict"] == "minor" and audit["suggested_verdict"] == "material"
    assert audit["override_reason"].startswith("Legal confirmed")


def test_a_typo_fix_is_not_suggested_as_material(client, admin, db):
    policy_id = _published_v1(client, admin, body=TYPO)
    v2 = create_draft(client, admin, policy_id, SELLS)
    row = db.execute(
        "SELECT suggested_verdict FROM policy_versions WHERE id = %(id)s", {"id": v2}
    ).fetchone()
    assert row["suggested_verdict"] in ("cosmetic", "minor")


def test_api_publish_defaults_to_the_suggested_verdict(app, api, db):
    from notifier import db as app_db
    from policy_versions import store

    with app.app_context(), app_db.connection() as conn:
        store.create_policy(conn, "privacy", "Privacy")
    api.post("/api/v1/policies/privacy/versions", json={"body_markdown": SELLS})
    soon = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    api.post(
        "/api/v1/policies/privacy/versions/1/publish",
        json={"effective_at": soon, "summary": "v1", "verdict": "material"},
    )
    draft = api.post("/api/v1/policies/privacy/versions", json={"body_markdown": SELLS_NOW})
    assert draft.get_json()["suggested_verdict"] == "material"
    later = (datetime.now(UTC) + timedelta(days=40)).isoformat()
    published = api.post(
        "/api/v1/policies/privacy/versions/2/publish",
        json={"effective_at": later, "summary": "We now sell data."},
    )
    assert published.status_code == 200 and published.get_json()["verdict"] == "material"

    changes = api.get("/api/v1/policies/privacy/versions/2/changes").get_json()
    assert changes["from"] == 1 and changes["to"] == 2
    assert changes["classification"]["verdict"] == "material"
    assert changes["changes"] and "do not" in changes["summary_text"]
    assert api.get("/api/v1/policies/privacy/versions/1/changes").status_code == 404
    bad = api.get("/api/v1/policies/privacy/versions/2/changes?against=two")
    assert bad.status_code == 422 and bad.get_json()["fields"]["against"]


def test_public_changes_compare_any_two_versions(client, admin, db):
    policy_id = _published_v1(client, admin)
    v2 = create_draft(client, admin, policy_id, SELLS_NOW)
    publish(client, admin, policy_id, v2, days=40, verdict="material")
    reverse = client.get("/policies/privacy/versions/1/changes?against=2")
    assert reverse.status_code == 200
    html = reverse.get_data(as_text=True)
    assert "compared with version 2" in html and "<ins" in html
    side = client.get("/policies/privacy/versions/2/changes?view=side-by-side")
    assert "side-by-side" in side.get_data(as_text=True)
    assert client.get("/policies/privacy/versions/2/changes?against=9").status_code == 404
    assert client.get("/policies/privacy/versions/2/changes?against=2").status_code == 422
    assert client.get("/policies/privacy/versions/2/changes?against=x").status_code == 422
    assert client.get("/policies/privacy/versions/2/changes?view=3d").status_code == 422
