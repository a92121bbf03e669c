"""``wheelfarm db``: the database schema."""

from __future__ import annotations

import click

from wheelfarm.cli.console import out, settings_of
from wheelfarm.store.database import create_store_engine, head_revision, stored_revision, upgrade

__all__ = ["db"]


@click.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Bring the database schema to the newest revision."""
    engine = create_store_engine(settings_of(ctx).database_url)
    try:
        before = stored_revision(engine)
        upgrade(engine)
        out.print(f"database schema: {before or 'empty'} -> {head_revision()}")
    finally:
        engine.dispose()
