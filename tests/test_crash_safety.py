"""Real `python worker.py` processes, one SIGKILLed at random instants: nobody is missed."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis import Redis
from test_notices import add_users, notice_of, published_v1

ROOT = Path(__file__).resolve().parent.parent
BATCH = 500


def _start_worker(env: dict, log) -> subprocess.Popen:
    # Its own process group: SIGKILL reaches the worker, its work-horse and its scheduler at once.
    return subprocess.Popen(
        [sys.executable, str(ROOT / "worker.py")],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _kill(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def _stop(process: subprocess.Popen) -> None:
    _kill(process, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        _kill(process)
        process.wait(timeout=10)


@pytest.mark.slow
def test_workers_killed_at_random_points_of_a_20000_user_notice_miss_nobody(
    app, servers, client, admin, db, fake_sendgrid, tmp_path
):
    settings = {
        "SEND_BATCH_SIZE": BATCH,
        "SEND_LEASE_SECONDS": 2,
        "SENDGRID_TIMEOUT": 1.0,
        "SWEEP_INTERVAL_SECONDS": 0.5,
        "SEND_RETRY_BASE_SECONDS": 0.05,
        "SEND_RETRY_MAX_SECONDS": 0.2,
    }
    app.config.update(settings)
    env = {
        **os.environ,
        **{k: str(v) for k, v in settings.items()},
        "DATABASE_URL": app.config["DATABASE_URL"],
        "REDIS_URL": servers["REDIS_URL"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "SENDGRID_API_KEY": fake_sendgrid.api_key,
        "SENDGRID_API_HOST": fake_sendgrid.url,
    }
    fake_sendgrid.set_latency(0.05)
    add_users(db, 20_000)
    redis = Redis.from_url(servers["REDIS_URL"])
    rng = random.Random(1234)
    kills = 0
    with open(tmp_path / "workers.log", "wb") as log:
        steady = _start_worker(env, log)  # holds the RQ scheduler lock: retries and sweeps run
        victim = None
        try:
            deadline = time.monotonic() + 20
            while not redis.exists("rq:scheduler-lock:default"):
                assert time.monotonic() < deadline, "the steady worker did not start"
                time.sleep(0.1)
            victim = _start_worker(env, log)
            _, v1 = published_v1(client, admin)
            notice_id = notice_of(db, v1)["id"]

            def state() -> str:
                row = db.execute("SELECT state FROM notices WHERE id = %(id)s", {"id": notice_id})
                return row.fetchone()["state"]

            while kills < 4 and state() != "done":
                time.sleep(rng.uniform(0.3, 1.2))
                _kill(victim)
                victim.wait(timeout=10)
                kills += 1
                victim = _start_worker(env, log)
            deadline = time.monotonic() + 90
            while state() != "done":
                assert time.monotonic() < deadline, (tmp_path / "workers.log").read_text()[-3000:]
                time.sleep(0.2)
        finally:
            for process in (victim, steady):
                if process is not None:
                    _stop(process)
            redis.close()
    fake_sendgrid.wait_idle()

    counts = fake_sendgrid.recipient_counts()
    assert len(counts) == 20_000  # nobody missed
    actual_duplicates = sum(n - 1 for n in counts.values())
    assert actual_duplicates <= kills * BATCH  # at most the batch in flight at each kill
    row = db.execute(
        """
        SELECT count(*) FILTER (WHERE state = 'sent') AS sent,
               count(*) FILTER (WHERE possible_duplicate AND state = 'sent') AS duplicates
          FROM deliveries
         WHERE notice_id = %(id)s
    """,
        {"id": notice_id},
    ).fetchone()
    assert row["sent"] == 20_000
    assert actual_duplicates <= row["duplicates"] <= kills * BATCH  # every duplicate reported
    assert kills >= 1
