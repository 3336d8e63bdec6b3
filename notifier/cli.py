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

    @app.cli.command("requeue-stuck")
    def requeue_stuck() -> None:
        """Run the recovery sweep now: re-send batches whose lease expired, restart lost jobs."""
        from . import jobs

        result = jobs.sweep_notices()
        click.echo(", ".join(f"{k}: {v}" for k, v in result.items()))

    @app.cli.command("purge")
    @click.option(
        "--older-than-days",
        type=click.IntRange(min=1),
        default=lambda: current_app.config["RETENTION_DAYS"],
        show_default="RETENTION_DAYS",
        help="Delete operational logs older than this many days.",
    )
    @click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
    def purge(older_than_days: int, dry_run: bool) -> None:
        """Delete webhook events, send attempts, outbox copies and host-webhook logs past the
        retention period. Acceptance evidence and the audit log are never deleted."""
        from datetime import UTC, datetime

        from . import audit, retention

        with db.connection() as conn:
            counts = retention.purge(conn, older_than_days, now=datetime.now(UTC), dry_run=dry_run)
            if not dry_run:
                with conn.transaction():
                    audit.record(conn, "retention.purged", None, days=older_than_days, **counts)
        verb = "Would delete" if dry_run else "Deleted"
        click.echo(f"{verb}: " + ", ".join(f"{n} from {t}" for t, n in counts.items()) + ".")

    @app.cli.command("load-demo")
    def load_demo() -> None:
        """Load the demo company, its policies and users (idempotent)."""
        from . import demodata

        with db.connection() as conn:
            click.echo(demodata.load(conn, zone=current_app.config["DISPLAY_TIMEZONE"]))
