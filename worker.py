"""Start an RQ worker (with its scheduler) for Policy Notifier: `python worker.py [--burst]`."""

from __future__ import annotations

import sys

from notifier import create_app
from notifier.queues import queue_names, redis_connection
from notifier.workers import AppWorker

if __name__ == "__main__":
    app = create_app()
    worker = AppWorker(queue_names(app), connection=redis_connection(app), app=app)
    worker.work(with_scheduler=True, burst="--burst" in sys.argv[1:])
