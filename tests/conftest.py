"""Real PostgreSQL and Redis for the suite: the URLs when set, else embedded servers."""

from __future__ import annotations

import os
import tempfile

import psycopg
import pytest
from redis import Redis

os.environ.setdefault("NOTIFIER_DATA_DIR", tempfile.mkdtemp(prefix="notifier-test-"))
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

from helpers import ADMIN_EMAIL, ADMIN_PASSWORD, csrf_token, with_database  # noqa: E402

from notifier import create_app, embedded, migrate  # noqa: E402

TEST_DB = "notifier_test"


@pytest.fixture(scope="session")
def servers(tmp_path_factory):
    """Start the embedded servers once for the session unless the URLs are given."""
    data_dir = tmp_path_factory.mktemp("srv")
    database_url = os.environ.get("DATABASE_URL") or embedded.start_postgres(
        data_dir, cleanup_mode="stop"
    )
    redis_url = os.environ.get("REDIS_URL") or embedded.start_redis(data_dir)
    yield {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "data_dir": str(data_dir)}
    embedded.stop_redis(data_dir)  # no-op when REDIS_URL was given


@pytest.fixture(scope="session")
def database(servers) -> str:
    """A fresh `notifier_test` database with every migration applied."""
    with psycopg.connect(servers["DATABASE_URL"], autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{TEST_DB}"')
    url = with_database(servers["DATABASE_URL"], TEST_DB)
    migrate.upgrade(url)
    return url


def _truncate_all(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute("""
            SELECT tablename
              FROM pg_tables
             WHERE schemaname = 'public' AND tablename NOT LIKE '%%yoyo%%'
        """)
        ]
        if not tables:
            return
        names = ", ".join(f'"{t}"' for t in tables)
        # A reader a test left behind (a pool's or cache listener's thread still finishing) can
        # deadlock with the TRUNCATE's locks; PostgreSQL then cancels one side: try again.
        for attempt in range(3):
            try:
                conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
                return
            except psycopg.errors.DeadlockDetected:
                if attempt == 2:
                    raise


@pytest.fixture
def app(database, servers):
    app = create_app(
        {
            "DATABASE_URL": database,
            "REDIS_URL": servers["REDIS_URL"],
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "SERVER_NAME": None,
            # Answers from memory, after waiting for the notifications committed so far: the
            # tests read their own writes at once, through the cache.
            "PENDING_CACHE_STRICT": True,
        }
    )
    yield app
    app.extensions["db"].close()
    _truncate_all(database)
    Redis.from_url(servers["REDIS_URL"]).flushdb()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def db(app):
    """A plain autocommit connection to the test database, for reading rows back."""
    with psycopg.connect(
        app.config["DATABASE_URL"], autocommit=True, row_factory=psycopg.rows.dict_row
    ) as conn:
        yield conn


@pytest.fixture
def admin(app, client) -> dict:
    """An admin, signed in through the real form."""
    from notifier import auth, db

    with app.app_context(), db.connection() as conn:
        row = auth.create_admin(conn, ADMIN_EMAIL, ADMIN_PASSWORD)
    token = csrf_token(client)
    response = client.post(
        "/admin/signin",
        data={
            "csrf_token": token,
            "email": ADMIN_EMAIL,
            "password": ADMIN_PASSWORD,
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return {"id": row["id"], "email": ADMIN_EMAIL, "csrf": csrf_token(client, "/admin/")}


@pytest.fixture
def api_key(app) -> str:
    from notifier import auth, db

    with app.app_context(), db.connection() as conn:
        _, key = auth.create_api_key(conn, "tests", None)
    return key


@pytest.fixture
def api(client, api_key):
    """The test client with the API key header on every call."""

    class Api:
        headers = {"Authorization": f"Bearer {api_key}"}

        def get(self, path, **kw):
            return client.get(path, headers=self.headers, **kw)

        def post(self, path, json=None, **kw):
            return client.post(path, json=json, headers=self.headers, **kw)

        def put(self, path, json=None, **kw):
            return client.put(path, json=json, headers=self.headers, **kw)

    return Api()


# --- notices: the fake SendGrid server and a job runner (docs/notifications.md) ---------------


@pytest.fixture(scope="session")
def fake_sendgrid_server():
    from fake_sendgrid import FakeSendGrid

    fake = FakeSendGrid().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_sendgrid(fake_sendgrid_server, app):
    """The fake, reset, with the app pointed at it and retry intervals made tiny."""
    fake_sendgrid_server.reset()
    app.config.update(
        SENDGRID_API_KEY=fake_sendgrid_server.api_key,
        SENDGRID_API_HOST=fake_sendgrid_server.url,
        SENDGRID_TIMEOUT=5.0,
        SEND_RETRY_BASE_SECONDS=0.05,
        SEND_RETRY_MAX_SECONDS=0.2,
        SWEEP_INTERVAL_SECONDS=0.5,
    )
    yield fake_sendgrid_server
    fake_sendgrid_server.reset()


@pytest.fixture
def run_jobs(app):
    """Run queued jobs in-process until `until()` holds (default: nothing left but sweeps).

    Each round is a burst worker with the scheduler, which first moves scheduled jobs that are
    due (retries, rate-capped batches) into their queues, as `python worker.py --burst` does.
    """
    import time

    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    from notifier.queues import QUEUE_NAMES, redis_connection
    from notifier.workers import AppSimpleWorker

    redis = redis_connection(app)
    queues = [Queue(name, connection=redis) for name in QUEUE_NAMES]

    def idle() -> bool:
        if any(q.count for q in queues):
            return False
        soon = int(time.time()) + 30  # a notice scheduled days ahead is not work left
        scheduled = [
            j for q in queues for j in ScheduledJobRegistry(queue=q).get_jobs_to_schedule(soon)
        ]
        return all(j.startswith("sweep-") for j in scheduled)

    def run(until=None, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            worker = AppSimpleWorker(queues, connection=redis, app=app)
            worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
            with app.app_context():
                done = until() if until is not None else idle()
            if done:
                return
            assert time.monotonic() < deadline, "jobs did not finish in time"
            time.sleep(0.05)

    return run


@pytest.fixture(autouse=True)
def _close_fastpath_pool(request):
    """Close the pending endpoint's own pool (notifier/fastpath.py) and its cache's listener
    (notifier/pendingcache.py) with each test's app."""
    app = request.getfixturevalue("app") if "app" in request.fixturenames else None
    yield
    if app is not None:
        from notifier import fastpath, pendingcache

        fastpath.close(app)
        pendingcache.close(app)
