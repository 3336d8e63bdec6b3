"""The send pipeline under faults: 429/5xx/timeouts, permanent errors, rate cap, lost leases."""

from __future__ import annotations

from test_notices import add_users, finished, notice_of, published_v1


def _ledger(db, notice_id: int) -> list[dict]:
    return db.execute(
        "SELECT * FROM deliveries WHERE notice_id = %(n)s ORDER BY id", {"n": notice_id}
    ).fetchall()


def _accepted_by_message(fake) -> dict[str, set[str]]:
    return {
        m["message_id"]: {p["to"][0]["email"] for p in m["payload"]["personalizations"]}
        for m in fake.accepted
    }


def test_with_20_percent_429_and_5xx_everyone_gets_it_once_and_only_accepted_sends_count(
    app, client, admin, db, fake_sendgrid, run_jobs
):
    app.config["SEND_BATCH_SIZE"] = 100
    app.config["SEND_MAX_RETRIES"] = 20
    fake_sendgrid.fail_ratio(0.2, statuses=(429, 500, 503), seed=7, reset_in=0.2)
    add_users(db, 3000)
    _, v1 = published_v1(client, admin)
    notice = notice_of(db, v1)
    run_jobs(until=finished(db, notice["id"]), timeout=90)

    stats = fake_sendgrid.stats()
    assert stats["requests"] > 30 and len(fake_sendgrid.rejected) > 0  # faults did happen
    assert {r["status"] for r in fake_sendgrid.rejected} <= {429, 500, 503}
    counts = fake_sendgrid.recipient_counts()
    assert len(counts) == 3000 and set(counts.values()) == {1}
    accepted = _accepted_by_message(fake_sendgrid)
    rows = _ledger(db, notice["id"])
    assert {r["state"] for r in rows} == {"sent"}
    assert all(r["email"] in accepted.get(r["sg_message_id"], ()) for r in rows)
    outcomes = db.execute(
        "SELECT outcome, count(*) AS n FROM send_attempts GROUP BY outcome"
    ).fetchall()
    by_outcome = {r["outcome"]: r["n"] for r in outcomes}
    assert by_outcome["sent"] == 30
    assert by_outcome.get("rate_limited", 0) + by_outcome.get("retry", 0) == len(
        fake_sendgrid.rejected
    )


def test_a_4xx_is_a_permanent_failure_with_sendgrids_text_and_can_be_retried(
    client, admin, db, fake_sendgrid, run_jobs
):
    add_users(db, 10)
    fake_sendgrid.api_key, real_key = "SG.other-key", fake_sendgrid.api_key  # → 401
    try:
        _, v1 = published_v1(client, admin)
        notice = notice_of(db, v1)
        run_jobs(until=finished(db, notice["id"]))
    finally:
        fake_sendgrid.api_key = real_key
    rows = _ledger(db, notice["id"])
    assert {r["state"] for r in rows} == {"failed"}
    assert "SendGrid 401" in rows[0]["error"] and "invalid" in rows[0]["error"]
    page = client.get(f"/admin/notices/{notice['id']}").get_data(as_text=True)
    assert "SendGrid 401" in page and "Retry 10 failed" in page

    assert (
        client.post(
            f"/admin/notices/{notice['id']}/retry", data={"csrf_token": admin["csrf"]}
        ).status_code
        == 302
    )
    run_jobs(until=finished(db, notice["id"]))
    assert {r["state"] for r in _ledger(db, notice["id"])} == {"sent"}
    assert len(fake_sendgrid.recipient_counts()) == 10


def test_persistent_5xx_gives_up_after_the_configured_retries(
    app, client, admin, db, fake_sendgrid, run_jobs
):
    app.config["SEND_MAX_RETRIES"] = 2
    fake_sendgrid.fail_next(10, status=503)
    add_users(db, 5)
    _, v1 = published_v1(client, admin)
    notice = notice_of(db, v1)
    run_jobs(until=finished(db, notice["id"]))
    rows = _ledger(db, notice["id"])
    assert {r["state"] for r in rows} == {"failed"}
    assert rows[0]["error"].startswith("gave up after 3 attempts")
    assert fake_sendgrid.stats()["requests"] == 3


def test_a_timeout_is_retried_and_reported_as_a_possible_duplicate(
    app, client, admin, db, fake_sendgrid, run_jobs
):
    app.config["SENDGRID_TIMEOUT"] = 0.3
    fake_sendgrid.hang_next(1, 1.0)  # the first request is answered after the client gave up
    add_users(db, 8)
    _, v1 = published_v1(client, admin)
    notice = notice_of(db, v1)
    run_jobs(until=finished(db, notice["id"]))
    fake_sendgrid.wait_idle()
    rows = _ledger(db, notice["id"])
    assert {r["state"] for r in rows} == {"sent"}
    assert all(r["possible_duplicate"] for r in rows)
    actual = fake_sendgrid.stats()["duplicates"]
    with app.app_context():
        from notifier import db as pool
        from notifier import notices

        with pool.connection() as conn:
            reported = notices.counts(conn, notice["id"])["duplicates"]
    assert reported == 8 and actual <= reported


def test_the_rate_cap_spreads_batches_over_time(app, client, admin, db, fake_sendgrid, run_jobs):
    app.config["SEND_BATCH_SIZE"] = 10
    app.config["SEND_RATE_PER_HOUR"] = 36_000  # 10 emails per second: one batch a second
    add_users(db, 30)
    _, v1 = published_v1(client, admin)
    notice = notice_of(db, v1)
    run_jobs(until=finished(db, notice["id"]))
    times = sorted(m["received_at"] for m in fake_sendgrid.accepted)
    assert len(times) == 3
    # Batch k's slot is k seconds after the first one's, and no batch goes before its slot.
    assert times[1] - times[0] >= 0.95 and times[2] - times[0] >= 1.95


def test_the_sweep_resends_a_batch_whose_worker_died_and_counts_duplicates(
    app, client, admin, db, fake_sendgrid, run_jobs
):
    from notifier import db as pool
    from notifier import jobs, ledger, notices

    app.config["SEND_BATCH_SIZE"] = 5
    add_users(db, 10)
    _, v1 = published_v1(client, admin)
    notice = notice_of(db, v1)
    with app.app_context():
        jobs.fan_out_notice(notice["id"])
        # A worker claims batch 1 and starts its request, then dies: nothing is recorded.
        with pool.connection() as conn, conn.transaction():
            claim = ledger.claim_batch(conn, notice["id"], 1, lease_seconds=60)
        with pool.connection() as conn:
            ledger.mark_requested(conn, claim.attempts["en"])
    run_jobs()  # batch 2 goes; batch 1 is held by the dead worker's lease
    assert len(fake_sendgrid.recipient_counts()) == 5
    db.execute(
        "UPDATE deliveries SET lease_expires_at = now() - interval '1 s' WHERE state = 'sending'"
    )
    with app.app_context():
        assert jobs.sweep_notices()["expired"] == 1
    run_jobs(until=finished(db, notice["id"]))
    assert len(fake_sendgrid.recipient_counts()) == 10
    with app.app_context(), pool.connection() as conn:
        totals = notices.counts(conn, notice["id"])
    assert totals["sent"] == 10 and totals["duplicates"] == 5
    interrupted = db.execute(
        "SELECT count(*) AS n FROM send_attempts WHERE outcome = 'interrupted'"
    ).fetchone()
    assert interrupted["n"] == 1


def test_a_batch_lost_before_its_job_was_enqueued_is_found_by_the_sweep(
    app, client, admin, db, fake_sendgrid, run_jobs
):
    from notifier import jobs, queues

    add_users(db, 7)
    _, v1 = published_v1(client, admin)
    notice = notice_of(db, v1)
    with app.app_context():
        jobs.fan_out_notice(notice["id"])
        queues.redis_connection().flushdb()  # the enqueue after COMMIT never happened
    db.execute("UPDATE deliveries SET due_at = now() - interval '1 hour'")
    with app.app_context():
        assert jobs.sweep_notices()["overdue"] == 1
    run_jobs(until=finished(db, notice["id"]))
    assert len(fake_sendgrid.recipient_counts()) == 7
