"""The email link /accept/<token>: shows the change, records email_link, refuses bad links."""

from __future__ import annotations

import re

from acceptance_helpers import publish_version, put_user


def _token(app, user_id, version_id, delivery_id=None):
    from notifier.tokens import acceptance_token

    with app.test_request_context():
        return acceptance_token(user_id, version_id, delivery_id)


def _csrf(html):
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_link_shows_summary_and_records_email_link_acceptance(app, api, client, db):
    version = publish_version(app, summary="We now keep logs for 90 days.")
    put_user(api, "u-1")
    user_id = db.execute("SELECT id FROM users").fetchone()["id"]
    notice_id = db.execute(
        "INSERT INTO notices (version_id, email, in_app, state) VALUES (%s, true, true, 'done')"
        " RETURNING id",
        [version.id],
    ).fetchone()["id"]
    delivery_id = db.execute(
        "INSERT INTO deliveries (notice_id, user_id, batch_no, state)"
        " VALUES (%s, %s, 0, 'delivered') RETURNING id",
        [notice_id, user_id],
    ).fetchone()["id"]
    token = _token(app, user_id, version.id, delivery_id=delivery_id)
    page = client.get(f"/accept/{token}").get_data(as_text=True)
    assert "We now keep logs for 90 days." in page and "I accept" in page
    response = client.post(
        f"/accept/{token}", data={"csrf_token": _csrf(page), "decision": "accept"}
    )
    assert response.status_code == 201
    row = db.execute("SELECT * FROM acceptances").fetchone()
    assert (row["method"], row["delivery_id"], row["decision"]) == (
        "email_link",
        delivery_id,
        "accepted",
    )
    again = client.post(f"/accept/{token}", data={"csrf_token": _csrf(page), "decision": "accept"})
    assert again.status_code == 200
    assert db.execute("SELECT count(*) AS n FROM acceptances").fetchone()["n"] == 1


def test_post_without_csrf_token_writes_nothing(app, api, client, db):
    version = publish_version(app)
    put_user(api, "u-1")
    token = _token(app, 1, version.id)
    assert client.post(f"/accept/{token}", data={"decision": "accept"}).status_code == 400
    assert db.execute("SELECT count(*) AS n FROM acceptances").fetchone()["n"] == 0


def test_tampered_expired_or_stale_links_get_a_clear_page_and_write_nothing(app, api, client, db):
    from notifier import tokens

    old = publish_version(app, effective_in_days=-20)
    put_user(api, "u-1")
    token = _token(app, 1, old.id)
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    response = client.get(f"/accept/{tampered}")
    assert response.status_code == 400 and "not valid" in response.get_data(as_text=True)
    with app.test_request_context():
        assert tokens.read_acceptance_token(token)["user_id"] == 1
    response = client.get(f"/accept/{_token(app, 999, old.id)}")
    assert response.status_code == 404
    import helpers

    publish_version(app, effective_in_days=-1, body=helpers.POLICY_V2)
    response = client.post(f"/accept/{token}", data={"decision": "accept"})
    assert response.status_code in (400, 409)
    page = client.get(f"/accept/{token}")
    assert page.status_code == 409 and "superseded" in page.get_data(as_text=True)
    assert db.execute("SELECT count(*) AS n FROM acceptances").fetchone()["n"] == 0


def test_expired_link_is_refused(app, api, client, monkeypatch):
    version = publish_version(app)
    put_user(api, "u-1")
    token = _token(app, 1, version.id)
    from notifier import tokens

    # Time travel is not possible here, so the link is read with a maximum age already passed.
    monkeypatch.setattr(
        "notifier.views.accept.read_acceptance_token",
        lambda t: tokens.read_acceptance_token(t, max_age=-1),
    )
    response = client.get(f"/accept/{token}")
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)


def test_the_page_and_the_recorded_wording_say_first_version_or_update(app, api, client, db):
    """Version 1 changed nothing before it: "Summary", "I have read the …"; an update says
    "What changed" and "I have read the changes to …". The recorded prompt is the one shown."""
    import helpers

    first = publish_version(app, effective_in_days=-20, summary="Our first policy.")
    put_user(api, "u-1")
    user_id = db.execute("SELECT id FROM users").fetchone()["id"]
    page = client.get(f"/accept/{_token(app, user_id, first.id)}").get_data(as_text=True)
    assert '<h2 id="summary-h">Summary</h2>' in page
    assert "I have read the Privacy Policy and I accept version 1." in page
    update = publish_version(app, effective_in_days=5, body=helpers.POLICY_V2)
    token = _token(app, user_id, update.id)
    page = client.get(f"/accept/{token}").get_data(as_text=True)
    assert '<h2 id="summary-h">What changed</h2>' in page
    wording = "I have read the changes to the Privacy Policy and I accept version 2."
    assert wording in page
    response = client.post(
        f"/accept/{token}", data={"csrf_token": _csrf(page), "decision": "accept"}
    )
    assert response.status_code == 201
    assert db.execute("SELECT prompt_text FROM acceptances").fetchone()["prompt_text"] == wording
