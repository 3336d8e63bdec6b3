"""Redis connection and the RQ queues, named by purpose."""

from __future__ import annotations

from flask import Flask, current_app
from redis import Redis
from rq import Queue

QUEUE_NAMES = ("fanout", "email", "default")


def init_app(app: Flask) -> None:
    app.extensions["redis"] = Redis.from_url(
        app.config["REDIS_URL"], socket_timeout=5, socket_connect_timeout=2
    )


def redis_connection(app: Flask | None = None) -> Redis:
    return (app or current_app).extensions["redis"]


def queue(name: str) -> Queue:
    return Queue(name, connection=redis_connection())


def queue_names(app: Flask | None = None) -> list[str]:
    return list(QUEUE_NAMES)
