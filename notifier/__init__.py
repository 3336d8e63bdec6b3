"""Policy Notifier: the Flask application factory."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from . import auth, cli, db, errors, observability, queues, security
from .config import config_from_env
from .embedded import ensure_urls

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def create_app(config: dict | None = None) -> Flask:
    app = Flask("notifier", template_folder=str(TEMPLATES), static_folder="static")
    app.config.from_mapping(config_from_env())  # notifier/config.py: os.environ + typed helpers
    app.config.update(config or {})  # tests pass a dict, like flaskr's test_config
    ensure_urls(app.config)  # embedded PostgreSQL / Redis when the URLs are unset
    observability.configure_logging(app.config.get("LOG_FORMAT"))

    for part in (db, queues, errors, security, auth, cli, observability):
        part.init_app(app)

    from .views import admin, api, public

    for bp in (admin.bp, public.bp, api.bp):
        app.register_blueprint(bp)

    from .views import notices as notice_views
    from .views import webhooks

    for bp in (notice_views.bp, notice_views.api_bp, webhooks.bp):
        app.register_blueprint(bp)
    from . import evidence_cli
    from .views import accept, hostadmin, reports, users_api, widget

    for bp in (accept.bp, users_api.bp, reports.bp, hostadmin.bp, widget.bp):
        app.register_blueprint(bp)
    evidence_cli.init_app(app)
    return app
