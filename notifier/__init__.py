"""Policy Notifier: the Flask application factory."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from . import (
    auth,
    cli,
    db,
    decisionlane,
    errors,
    evidence_cli,
    observability,
    openapi,
    queues,
    security,
)
from .config import config_from_env
from .embedded import ensure_urls
from .views import (
    accept,
    admin,
    api,
    hostadmin,
    public,
    reports,
    users_api,
    webhooks,
    widget,
)
from .views import notices as notice_views  # `notifier.notices` is the SQL module: no shadowing

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def create_app(config: dict | None = None) -> Flask:
    app = Flask("notifier", template_folder=str(TEMPLATES), static_folder="static")
    app.url_map.converters["int"] = errors.IdConverter  # before any route is added
    app.config.from_mapping(config_from_env())  # notifier/config.py: os.environ + typed helpers
    app.config.update(config or {})  # tests pass a dict, like flaskr's test_config
    ensure_urls(app.config)  # embedded PostgreSQL / Redis when the URLs are unset
    observability.configure_logging(app.config.get("LOG_FORMAT"))

    for part in (db, queues, errors, security, auth, cli, observability):
        part.init_app(app)

    evidence_cli.init_app(app)

    blueprints = (
        admin.bp, public.bp, api.bp, openapi.bp, notice_views.bp, notice_views.api_bp, webhooks.bp,
        accept.bp, users_api.bp, reports.bp, hostadmin.bp, widget.bp,
    )  # fmt: skip
    for bp in blueprints:
        app.register_blueprint(bp)
    decisionlane.init_app(app)  # the decision POSTs' plain case, in front of Flask
    return app
