"""Structured request/job logs and the Prometheus endpoint."""

from __future__ import annotations

import json
import logging
import os

from rq import Queue

from notifier.observability import configure_logging
from notifier.workers import AppSimpleWorker


def test_each_request_is_one_structured_log_line(client, caplog):
    caplog.set_level(logging.INFO, logger="notifier.requests")
    response = client.get("/healthz", headers={"X-Request-Id": "req-42"})
    assert response.headers["X-Request-Id"] == "req-42"
    records = [r for r in caplog.records if getattr(r, "event", None) == "request"]
    assert len(records) == 1
    record = records[0]
    assert (record.method, record.path, record.status, record.request_id) == (
        "GET",
        "/healthz",
        200,
        "req-42",
    )
    configure_logging("json")
    ours = [h for h in logging.getLogger().handlers if getattr(h, "is_notifier_handler", False)]
    assert len(ours) == 1
    line = ours[0].format(record)
    data = json.loads(line)
    assert data["event"] == "request" and data["endpoint"] == "public.healthz"
    assert data["level"] == "INFO" and data["duration_ms"] >= 0


def test_metrics_count_requests_queues_and_jobs(app, client):
    client.get("/healthz")
    from notifier import queues

    with app.app_context():
        Queue("default", connection=queues.redis_connection()).enqueue("time.sleep", 0)
        AppSimpleWorker(["default"], connection=queues.redis_connection(), app=app).work(burst=True)
        Queue("email", connection=queues.redis_connection()).enqueue("time.sleep", 0)
    text = client.get("/metrics").get_data(as_text=True)
    assert (
        'notifier_http_requests_total{endpoint="public.healthz",method="GET",status="200"}' in text
    )
    assert 'notifier_queue_depth{queue="email"} 1.0' in text
    assert 'notifier_jobs_total{job="sleep",outcome="all"} 1.0' in text


def test_metrics_are_refused_to_other_addresses_without_the_token(client, monkeypatch):
    outside = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get("/metrics", environ_base=outside).status_code == 403
    monkeypatch.setenv("METRICS_TOKEN", "s3cret")
    assert client.get("/metrics", environ_base=outside).status_code == 403
    ok = client.get("/metrics", environ_base=outside, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200


def test_text_logs_show_the_request_fields_for_a_person(client, caplog):
    caplog.set_level(logging.INFO, logger="notifier.requests")
    client.get("/healthz")
    record = next(r for r in caplog.records if getattr(r, "event", None) == "request")
    configure_logging("text")
    ours = [h for h in logging.getLogger().handlers if getattr(h, "is_notifier_handler", False)]
    line = ours[0].format(record)
    assert "request method=GET path=/healthz status=200 duration_ms=" in line
    configure_logging("json")


def test_new_request_ids_are_unique_per_process_and_after_a_fork():
    from notifier import observability

    ids = {observability.request_id(None) for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert observability.request_id("sent-by-caller") == "sent-by-caller"
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first id, then out without running the parent's cleanup
        os.write(write, observability.request_id(None).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    parent = observability.request_id(None)
    assert len(child) == 32 and child[:16] != parent[:16]
