"""RQ workers that run each job inside the Flask application context."""

from __future__ import annotations

from flask import Flask
from rq import SimpleWorker, Worker


class AppContextMixin:
    """Run every job in `app.app_context()`, as Flask's Celery example does for tasks."""

    def __init__(self, *args, app: Flask, **kwargs) -> None:
        self.app = app
        super().__init__(*args, **kwargs)

    def perform_job(self, *args, **kwargs):
        with self.app.app_context():
            return super().perform_job(*args, **kwargs)


class AppWorker(AppContextMixin, Worker):
    """Forks a work-horse per job; the database pool is reopened in the child (notifier.db)."""


class AppSimpleWorker(AppContextMixin, SimpleWorker):
    """Runs jobs in-process: for tests and `--burst` runs."""
