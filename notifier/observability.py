"""Structured logs (one JSON line per request and per job) and Prometheus metrics at /metrics."""

from __future__ import annotations

import ipaddress
import itertools
import logging
import os
import sys
import time

from flask import Flask, Response, abort, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from pythonjsonlogger.json import JsonFormatter

log = logging.getLogger("notifier.requests")

REQUESTS = Counter(
    "notifier_http_requests_total", "HTTP requests answered", ["method", "endpoint", "status"]
)
LATENCY = Histogram(
    "notifier_http_request_seconds",
    "Time to answer an HTTP request",
    ["endpoint"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
JOB_STATS_KEY = "notifier:metrics:jobs"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is now (test runners swap it), like logging.lastResort."""

    is_notifier_handler = True

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class _TextFormatter(logging.Formatter):
    """Plain lines for a terminal, with a request's or job's fields appended as key=value."""

    FIELDS = ("method", "path", "status", "duration_ms", "job", "job_id", "queue", "ok")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = [f"{k}={getattr(record, k)}" for k in self.FIELDS if hasattr(record, k)]
        return f"{line} {' '.join(pairs)}" if pairs else line


def configure_logging(fmt: str | None = None) -> None:
    """JSON lines on stderr (LOG_FORMAT=json, the default) or plain text (LOG_FORMAT=text).

    Replaces only a handler installed here before, so a host's or test runner's handlers stay.
    """
    fmt = (fmt or os.environ.get("LOG_FORMAT") or "json").lower()
    handler = _StderrHandler()
    if fmt == "text":
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    else:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not getattr(h, "is_notifier_handler", False)]
    root.addHandler(handler)
    root.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # we log each request ourselves


def record_job(redis, func_name: str, seconds: float, ok: bool) -> None:
    """Add one job run to the shared counters; forked work-horses have no metrics of their own."""
    pipe = redis.pipeline(transaction=False)
    pipe.hincrby(JOB_STATS_KEY, f"{func_name}|count", 1)
    pipe.hincrbyfloat(JOB_STATS_KEY, f"{func_name}|seconds", seconds)
    if not ok:
        pipe.hincrby(JOB_STATS_KEY, f"{func_name}|failed", 1)
    pipe.execute()


class _LiveCollector:
    """Figures read at scrape time from Redis and PostgreSQL, so every process reports the same."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self):
        from rq import Queue

        from . import db, queues

        with self.app.app_context():
            redis = queues.redis_connection()
            depth = GaugeMetricFamily("notifier_queue_depth", "Jobs waiting", labels=["queue"])
            for name in queues.queue_names():
                depth.add_metric([name], Queue(name, connection=redis).count)
            yield depth
            runs = CounterMetricFamily("notifier_jobs", "Jobs run", labels=["job", "outcome"])
            seconds = CounterMetricFamily("notifier_job_seconds", "Time in jobs", labels=["job"])
            for field, value in redis.hgetall(JOB_STATS_KEY).items():
                func, _, kind = field.decode().partition("|")
                if kind == "count":
                    runs.add_metric([func, "all"], float(value))
                elif kind == "failed":
                    runs.add_metric([func, "failed"], float(value))
                else:
                    seconds.add_metric([func], float(value))
            yield runs
            yield seconds
            emails = GaugeMetricFamily(
                "notifier_deliveries", "Notice deliveries by state", labels=["state"]
            )
            with db.connection() as conn:
                exists = conn.execute("SELECT to_regclass('deliveries') IS NOT NULL AS ok")
                if exists.fetchone()["ok"]:
                    for row in conn.execute(
                        "SELECT state, count(*) AS n FROM deliveries GROUP BY state"
                    ):
                        emails.add_metric([row["state"]], row["n"])
            yield emails


def _allowed_to_scrape() -> bool:
    token = current_app.config.get("METRICS_TOKEN") or os.environ.get("METRICS_TOKEN")
    if token:
        return request.headers.get("Authorization") == f"Bearer {token}"
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


# `.labels()` takes a lock and builds a key on every call; the children never change, so each
# (method, endpoint, status) is looked up once per process. Bounded: endpoints × methods × codes.
_CHILDREN: dict[tuple, tuple] = {}


def _count(method: str, endpoint: str, status: int, seconds: float) -> None:
    key = (method, endpoint, status)
    children = _CHILDREN.get(key)
    if children is None:
        children = _CHILDREN[key] = (
            REQUESTS.labels(method, endpoint, status),
            LATENCY.labels(endpoint),
        )
    children[0].inc()
    children[1].observe(seconds)


def request_id(sent: str | None) -> str:
    """The request's id: the caller's `X-Request-Id`, or a new one: 32 hex digits, this
    process's random prefix and a counter. Unique like a UUID4 without reading the system's
    random source on every request: a system call that gives up the GIL, where about half of
    the pending lane's samples under load were threads waiting to take it back."""
    return sent or f"{_ID_PREFIX}{next(_ids):016x}"


def _new_id_prefix() -> None:
    global _ID_PREFIX, _ids
    _ID_PREFIX, _ids = os.urandom(8).hex(), itertools.count()


_new_id_prefix()
os.register_at_fork(after_in_child=_new_id_prefix)  # a forked worker never repeats its parent's


def answered(
    method: str, path: str, endpoint: str, status: int, started: float, rid: str, remote_addr
) -> None:
    """Count an answered request and log it (every request; see `decisionlane` too)."""
    seconds = time.perf_counter() - started
    _count(method, endpoint, status, seconds)
    if log.isEnabledFor(logging.INFO):  # the fields are built only for a line that is written
        log.info(
            "request",
            extra={
                "event": "request",
                "request_id": rid,
                "method": method,
                "path": path,
                "endpoint": endpoint,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "remote_addr": remote_addr,
            },
        )


def init_app(app: Flask) -> None:
    live = _LiveCollector(app)

    @app.before_request
    def start_timer() -> None:
        g.request_started = time.perf_counter()
        g.request_id = request_id(request.headers.get("X-Request-Id"))

    @app.after_request
    def log_request(response):
        started = g.pop("request_started", None)
        if started is None:
            return response
        endpoint = request.endpoint or "unmatched"
        answered(
            request.method, request.path, endpoint, response.status_code,
            started, g.request_id, request.remote_addr,
        )  # fmt: skip
        response.headers.setdefault("X-Request-Id", g.request_id)
        return response

    @app.get("/metrics")
    def metrics():
        """Prometheus text format: from loopback, or with `Authorization: Bearer METRICS_TOKEN`."""
        if not _allowed_to_scrape():
            abort(403, "Metrics are served to loopback addresses or with the METRICS_TOKEN.")
        registry = CollectorRegistry()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            multiprocess.MultiProcessCollector(registry)  # every server process's counters
        else:
            from .pendingcache import ANSWERS, RESETS

            for metric in (REQUESTS, LATENCY, ANSWERS, RESETS):
                registry.register(metric)
        registry.register(live)
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
