"""`flask --app notifier evidence …`: verify the acceptance evidence chain."""

from __future__ import annotations

import click
from flask import Flask

from . import db, evidence


def init_app(app: Flask) -> None:
    @app.cli.group("evidence")
    def evidence_group() -> None:
        """Acceptance evidence."""

    @evidence_group.command("verify")
    def verify() -> None:
        """Recompute every hash chain; exit 1 naming the first row that does not match."""
        with db.connection() as conn:
            result = evidence.verify(conn)
        if not result.ok:
            raise click.ClickException(
                f"Evidence chain BROKEN after {result.rows} rows: {result.problem}"
            )
        click.echo(f"Evidence chain OK: {result.rows} rows in {result.chains} chain(s) verified.")
