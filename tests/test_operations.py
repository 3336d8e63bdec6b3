"""Operator commands: requeue-stuck and purge (retention never touches acceptance evidence)."""

from __future__ import annotations

from test_notices import add_users, finished, notice_of, published_v1


def test_requeue_stuck_resends_a_batch_whose_lease_expired(
    app, client, admin, db, fake_sendgrid, run_jobs
):
    from notifier import db as pool
    from notifier import jobs, ledger

    app.config["SEND_BATCH_SIZE"] = 5
    add_users(db, 10)
    _, v1 = published_v1(client, admin)
    notice = notice_of(db, v1)
    with app.app_context():
        jobs.fan_out_notice(notice["id"])
        with pool.connection() as conn, conn.transaction():
            ledger.claim_batch(conn, notice["id"], 1, lease_seconds=60)  # a worker that died
    run_jobs()
    assert len(fake_sendgrid.recipient_counts()) == 5
    db.execute("UPDATE deliveries SET lease_expires_at = now() - interval '1 s' "
               "WHERE state = 'sending'")  # fmt: skip
    result = app.test_cli_runner().invoke(args=["requeue-stuck"])
    assert result.exit_code == 0 and "expired: 1" in result.output
    run_jobs(until=finished(db, notice["id"]))
    assert len(fake_sendgrid.recipient_counts()) == 10


def test_purge_deletes_old_logs_only_and_never_evidence(app, client, admin, db, fake_sendgrid,
                                                       run_jobs):  # fmt: skip
    add_users(db, 3)
    _, v1 = published_v1(client, admin)
    notice = notice_of(db, v1)
    run_jobs(until=finished(db, notice["id"]))
    delivery = db.execute("SELECT id FROM deliveries LIMIT 1").fetchone()["id"]
    db.execute("""
        INSERT INTO delivery_events (sg_event_id, delivery_id, event, received_at, payload)
        VALUES ('old-1', %(d)s, 'delivered', now() - interval '500 days', '{}'),
               ('new-1', %(d)s, 'delivered', now(), '{}')
    """, {"d": delivery})  # fmt: skip
    db.execute("UPDATE send_attempts SET claimed_at = now() - interval '500 days'")
    attempts = db.execute("SELECT count(*) AS n FROM send_attempts").fetchone()["n"]
    assert attempts >= 1
    before = {t: db.execute(f"SELECT count(*) AS n FROM {t}").fetchone()["n"]
              for t in ("acceptances", "audit_log", "deliveries")}  # fmt: skip

    runner = app.test_cli_runner()
    dry = runner.invoke(args=["purge", "--older-than-days", "400", "--dry-run"])
    assert "Would delete: 1 from delivery_events" in dry.output
    assert db.execute("SELECT count(*) AS n FROM delivery_events").fetchone()["n"] == 2
    done = runner.invoke(args=["purge", "--older-than-days", "400"])
    assert done.exit_code == 0, done.output
    assert f"{attempts} from send_attempts" in done.output
    events = [r["sg_event_id"] for r in db.execute("SELECT sg_event_id FROM delivery_events")]
    assert events == ["new-1"]
    assert db.execute("SELECT count(*) AS n FROM send_attempts").fetchone()["n"] == 0
    assert (
        db.execute("SELECT count(*) AS n FROM deliveries").fetchone()["n"] == before["deliveries"]
    )
    assert (
        db.execute("SELECT count(*) AS n FROM acceptances").fetchone()["n"] == before["acceptances"]
    )
    assert (
        db.execute(
            "SELECT count(*) AS n FROM audit_log WHERE action = 'retention.purged'"
        ).fetchone()["n"]
        == 1
    )
    bad = runner.invoke(args=["purge", "--older-than-days", "0"])
    assert bad.exit_code != 0 and "0" in bad.output
