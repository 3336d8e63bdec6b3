"""Start an RQ worker (with its scheduler) for Policy Notifier: `python worker.py [--burst]`."""

from __future__ import annotations

import logging
import sys
import time

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from notifier import create_app
from notifier.queues import queue_names, redis_connection
from notifier.workers import AppWorker

if __name__ == "__main__":
    app = create_app()
    burst = "--burst" in sys.argv[1:]
    while True:
        try:
            worker = AppWorker(queue_names(app), connection=redis_connection(app), app=app)
            worker.work(with_scheduler=True, burst=burst)
            break  # a requested stop (SIGTERM, Ctrl-C) or the end of a burst
        except (RedisConnectionError, RedisTimeoutError):
            # Redis went away: wait for it rather than exit, so no supervisor is needed for a
            # restart; the sweep then rebuilds whatever jobs an empty Redis lost.
            logging.getLogger("notifier.jobs").warning("Redis unavailable; retrying in 2 s")
            time.sleep(2)
