"""RQ workers that run each job inside the Flask application context."""

from __future__ import annotations

import logging
import time

from flask import Flask
from redis.exceptions import RedisError
from rq import SimpleWorker, Worker

from .observability import record_job

log = logging.getLogger("notifier.jobs")
MAINTENANCE_SECONDS = 15  # RQ's default is 600: far too long to notice a lost sweep


class AppContextMixin:
    """Run every job in `app.app_context()`, as Flask's Celery example does for tasks."""

    def __init__(self, *args, app: Flask, **kwargs) -> None:
        self.app = app
        kwargs.setdefault("maintenance_interval", MAINTENANCE_SECONDS)
        super().__init__(*args, **kwargs)

    def run_maintenance_tasks(self) -> None:
        """RQ's registry clean-up, then make sure the recovery sweep is scheduled.

        The sweep reschedules itself, but a Redis that restarted empty has lost it; every
        worker re-arming it (idempotently, by slot id) means the pipeline heals without a human.
        """
        super().run_maintenance_tasks()
        from . import jobs

        with self.app.app_context():
            jobs.ensure_sweep()

    def perform_job(self, job, queue, *args, **kwargs):
        """Run the job in the app context; log one JSON line and count it for /metrics."""
        started = time.perf_counter()
        with self.app.app_context():
            ok = super().perform_job(job, queue, *args, **kwargs)
        seconds = time.perf_counter() - started
        name = job.func_name.rsplit(".", 1)[-1]
        log.info(
            "job",
            extra={
                "event": "job",
                "job_id": job.id,
                "job": name,
                "queue": queue.name,
                "job_args": [a for a in job.args if isinstance(a, int | str)],
                "ok": bool(ok),
                "duration_ms": round(seconds * 1000, 2),
            },
        )
        try:
            record_job(self.connection, name, seconds, bool(ok))
        except RedisError:
            log.warning("could not record job metrics", exc_info=True)
        return ok


class AppWorker(AppContextMixin, Worker):
    """Forks a work-horse per job; the database pool is reopened in the child (notifier.db)."""


class AppSimpleWorker(AppContextMixin, SimpleWorker):
    """Runs jobs in-process: for tests and `--burst` runs."""
