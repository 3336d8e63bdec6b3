"""`flask --app notifier …` commands an operator needs."""

from __future__ import annotations

import click
from flask import Flask, current_app

from . import auth, db, migrate


def init_app(app: Flask) -> None:
    @app.cli.command("create-admin")
    @click.option("--email", prompt=True)
    @click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
    def create_admin(email: str, password: str) -> None:
        """Create an admin who can sign in to the web UI."""
        from . import audit
        from .errors import NotifierError

        try:
            with db.connection() as conn, conn.transaction():
                admin = auth.create_admin(conn, email, password)
                audit.record(conn, "admin.created", f"admin:{admin['email']}")
        except NotifierError as exc:
            raise click.ClickException(exc.message) from exc
        click.echo(f"Admin {admin['email']} created.")

    @app.cli.command("create-api-key")
    @click.option("--name", required=True, help="What the key is for, e.g. 'ci-publisher'.")
    def create_api_key(name: str) -> None:
        """Create an API key; it is printed once and stored only as a hash."""
        from . import audit
        from .errors import NotifierError

        try:
            with db.connection() as conn, conn.transaction():
                row, key = auth.create_api_key(conn, name, None)
                audit.record(conn, "api_key.created", f"api-key:{row['prefix']}", name=name)
        except NotifierError as exc:
            raise click.ClickException(exc.message) from exc
        click.echo(key)

    @app.cli.group("db")
    def db_group() -> None:
        """Database schema."""

    @db_group.command("upgrade")
    def db_upgrade() -> None:
        """Apply pending SQL migrations."""
        applied = migrate.upgrade(current_app.config["DATABASE_URL"])
        click.echo(f"Applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}.")

    @app.cli.command("load-demo")
    def load_demo() -> None:
        """Load the demo company, its policies and users (idempotent)."""
        from . import demodata

        with db.connection() as conn:
            click.echo(demodata.load(conn, zone=current_app.config["DISPLAY_TIMEZONE"]))
