"""Operator commands: create-admin, create-api-key, db upgrade, load-demo."""

from __future__ import annotations


def test_create_admin_then_sign_in(app, client, db):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["create-admin", "--email", "ops@example.com", "--password", "a long password"]
    )
    assert result.exit_code == 0, result.output
    assert "ops@example.com created" in result.output
    short = runner.invoke(args=["create-admin", "--email", "x@example.com", "--password", "short"])
    assert short.exit_code != 0 and "at least 10 characters" in short.output
    row = db.execute("SELECT password_hash FROM admins").fetchone()
    assert row["password_hash"].startswith("$argon2")


def test_create_api_key_prints_a_working_key_once(app, client):
    result = app.test_cli_runner().invoke(args=["create-api-key", "--name", "ci"])
    key = result.output.strip()
    assert key.startswith("pn_")
    assert (
        client.get("/api/v1/policies", headers={"Authorization": f"Bearer {key}"}).status_code
        == 200
    )


def test_db_upgrade_reports_nothing_pending(app):
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0 and "none pending" in result.output


def test_load_demo_is_idempotent(app, db):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["load-demo"])
    assert first.exit_code == 0, first.output
    counts = db.execute("""
        SELECT (SELECT count(*) FROM policies) AS policies,
               (SELECT count(*) FROM policy_versions) AS versions,
               (SELECT count(*) FROM users) AS users,
               (SELECT count(*) FROM admins) AS admins
    """).fetchone()
    assert counts["policies"] == 2 and counts["versions"] == 5 and counts["users"] == 50
    second = runner.invoke(args=["load-demo"])
    assert "nothing new" in second.output
    assert (
        db.execute("""
        SELECT (SELECT count(*) FROM policies) AS policies,
               (SELECT count(*) FROM policy_versions) AS versions,
               (SELECT count(*) FROM users) AS users,
               (SELECT count(*) FROM admins) AS admins
    """).fetchone()
        == counts
    )
    upcoming = db.execute("""
        SELECT count(*) AS n FROM policy_versions WHERE effective_at > now()
    """).fetchone()["n"]
    assert upcoming >= 1
    # The editorial update asks for no click (notice: implied on activity); the rest do.
    modes = db.execute("""
        SELECT p.slug, v.seq, v.acceptance_mode, v.verdict
          FROM policy_versions v JOIN policies p ON p.id = v.policy_id ORDER BY p.slug, v.seq
    """).fetchall()
    assert [(m["slug"], m["seq"], m["acceptance_mode"]) for m in modes] == [
        ("privacy", 1, "explicit"),
        ("privacy", 2, "notice"),
        ("privacy", 3, "explicit"),
        ("terms", 1, "explicit"),
        ("terms", 2, "explicit"),
    ]
    assert [m["verdict"] for m in modes] == [
        "material",
        "minor",
        "material",
        "material",
        "material",
    ]
    override = db.execute(
        "SELECT verdict_override_reason FROM policy_versions WHERE verdict = 'minor'"
    ).fetchone()["verdict_override_reason"]
    assert override.startswith("Reviewed:")
