"""The schema: every migration applies to an empty database, and the database keeps the rules."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.errors import CheckViolation

from notifier import migrate
from policy_versions.markdown import canonical, content_hash, render


def test_all_migrations_apply_to_an_empty_database_and_none_stay_pending(servers):
    from helpers import with_database

    with psycopg.connect(servers["DATABASE_URL"], autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "notifier_migrations" WITH (FORCE)')
        conn.execute('CREATE DATABASE "notifier_migrations"')
    url = with_database(servers["DATABASE_URL"], "notifier_migrations")
    applied = migrate.upgrade(url)
    assert applied[0] == "0001_initial"
    assert migrate.pending(url) == []
    assert migrate.upgrade(url) == []  # running it again is a no-op
    with psycopg.connect(url) as conn:
        tables = {
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    assert {"admins", "policies", "policy_versions", "api_keys", "audit_log", "users"} <= tables


def _insert_published(db, body="# Terms\n\nBe nice.\n"):
    policy_id = db.execute(
        "INSERT INTO policies (slug, title) VALUES ('terms', 'Terms') RETURNING id"
    ).fetchone()["id"]
    body = canonical(body)
    return db.execute(
        """
        INSERT INTO policy_versions (policy_id, seq, body_md, body_html, content_sha256, summary,
                                     effective_at, published_at, verdict)
        VALUES (%(p)s, 1, %(b)s, %(h)s, %(s)s, 'First.', now(), now(), 'material')
        RETURNING id
    """,
        {"p": policy_id, "b": body, "h": render(body), "s": content_hash(body)},
    ).fetchone()["id"]


def test_database_refuses_to_update_a_published_version(app, db):
    version_id = _insert_published(db)
    for column, value in (
        ("body_md", "# Changed\n"),
        ("summary", "Rewritten"),
        ("effective_at", "2030-01-01T00:00:00Z"),
    ):
        with pytest.raises(CheckViolation, match="immutable"):
            db.execute(
                f"UPDATE policy_versions SET {column} = %(v)s WHERE id = %(id)s",
                {"v": value, "id": version_id},
            )
    with pytest.raises(CheckViolation, match="cannot be deleted"):
        db.execute("DELETE FROM policy_versions WHERE id = %(id)s", {"id": version_id})
    row = db.execute("SELECT body_md, summary FROM policy_versions").fetchone()
    assert row == {"body_md": "# Terms\n\nBe nice.\n", "summary": "First."}


def test_database_refuses_a_hash_that_does_not_match_the_text(app, db):
    policy_id = db.execute(
        "INSERT INTO policies (slug, title) VALUES ('p', 'P') RETURNING id"
    ).fetchone()["id"]
    with pytest.raises(CheckViolation, match="content_sha256"):
        db.execute(
            """
            INSERT INTO policy_versions (policy_id, seq, body_md, body_html, content_sha256)
            VALUES (%(p)s, 1, 'text', '<p>text</p>', repeat('a', 64))
        """,
            {"p": policy_id},
        )


def test_database_refuses_an_effective_date_before_a_published_one(app, db):
    version_id = _insert_published(db)
    policy_id = db.execute(
        "SELECT policy_id FROM policy_versions WHERE id = %(id)s", {"id": version_id}
    ).fetchone()["policy_id"]
    body = canonical("# Terms\n\nBe kind.\n")
    with pytest.raises(CheckViolation, match="precedes"):
        db.execute(
            """
            INSERT INTO policy_versions (policy_id, seq, body_md, body_html, content_sha256,
                                         summary, effective_at, published_at, verdict)
            VALUES (%(p)s, 2, %(b)s, '', %(s)s, 'x', now() - interval '1 day', now(), 'minor')
        """,
            {"p": policy_id, "b": body, "s": content_hash(body)},
        )


def test_audit_log_is_append_only(app, db):
    db.execute("INSERT INTO audit_log (actor, action) VALUES ('cli', 'test.done')")
    with pytest.raises(CheckViolation, match="append-only"):
        db.execute("UPDATE audit_log SET action = 'forged'")
    with pytest.raises(CheckViolation, match="append-only"):
        db.execute("DELETE FROM audit_log")


DIGESTS = {
    "0" * 64: True,
    "0123456789abcdef" * 4: True,
    "0" * 63: False,
    "0" * 65: False,
    "A" + "0" * 63: False,  # lowercase only: one text, one spelling
    "g" + "0" * 63: False,
    "é" + "0" * 62: False,  # 63 characters, 64 bytes
    "0" * 63 + "\n": False,
    "": False,
}


@pytest.mark.parametrize(("digest", "allowed"), DIGESTS.items())
def test_evidence_digests_are_64_lowercase_hex_digits(app, db, digest, allowed):
    db.execute(
        "INSERT INTO evidence_chain_head (chain, last_id, last_hash) VALUES (0, 0, %(g)s)",
        {"g": "0" * 64},
    )
    update = "UPDATE evidence_chain_head SET last_hash = %(h)s WHERE chain = 0"
    if allowed:
        db.execute(update, {"h": digest})
    else:
        with pytest.raises(CheckViolation, match="last_hash_check"):
            db.execute(update, {"h": digest})


def test_every_evidence_digest_column_has_the_same_check(app, db):
    rows = db.execute("""
        SELECT conname, pg_get_constraintdef(oid) AS def, convalidated
          FROM pg_constraint
         WHERE conrelid IN ('acceptances'::regclass, 'evidence_chain_head'::regclass)
           AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%[0-9a-f]%'
    """).fetchall()
    columns = {
        "subject_key",
        "content_sha256",
        "context_sha256",
        "prev_hash",
        "row_hash",
        "last_hash",
    }
    assert {row["conname"].split("_", 1)[1].removeprefix("chain_head_") for row in rows} == {
        f"{column}_check" for column in columns
    }
    for row in rows:
        column = next(c for c in columns if f"{c}_check" in row["conname"])
        assert row["def"] == (
            f"CHECK ((({column} ~ '^[0-9a-f]+$'::text) AND (octet_length({column}) = 64)))"
        )
        assert row["convalidated"]
