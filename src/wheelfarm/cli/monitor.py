"""Monitoring commands: ``admins`` (who may see the dashboard), ``farm pause|resume``, and
``monitor``, the terminal dashboard."""

from __future__ import annotations

import json
import time
from dataclasses import asdict

import click

from wheelfarm.app.parts import store_transaction
from wheelfarm.cli.console import out, settings_of, show_new_token
from wheelfarm.errors import NotFound
from wheelfarm.farm.pause import pause_farm, resume_farm
from wheelfarm.monitor import admins as registry
from wheelfarm.monitor.admins import TOKEN_FILE

__all__ = ["admins", "farm", "monitor"]


@click.group()
def admins() -> None:
    """The operators who may use the dashboard, the terminal monitor and /metrics."""


@admins.command("add")
@click.argument("name")
@click.pass_context
def admins_add(ctx: click.Context, name: str) -> None:
    """Add an admin and print its token (shown only this once)."""
    with store_transaction(settings_of(ctx)) as connection:
        token = registry.add_admin(connection, name, now=time.time())
    show_new_token("admin", name, token)


@admins.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def admins_list(ctx: click.Context, as_json: bool) -> None:
    """The admins and when they were added."""
    with store_transaction(settings_of(ctx)) as connection:
        found = registry.list_admins(connection)
    if as_json:
        out.print_json(json.dumps([asdict(a) for a in found]))
        return
    for one in found:
        added = time.strftime("%Y-%m-%d %H:%M", time.gmtime(one.created_at))
        out.print(f"{one.name}  added {added}", markup=False, highlight=False)


@admins.command("remove")
@click.argument("name")
@click.pass_context
def admins_remove(ctx: click.Context, name: str) -> None:
    """Revoke an admin: its token stops working at once."""
    with store_transaction(settings_of(ctx)) as connection:
        if not registry.remove_admin(connection, name):
            raise NotFound(f"no admin named {name!r}")
    out.print(f"admin {name} removed")


@click.group()
def farm() -> None:
    """The whole farm at once."""


@farm.command("pause")
@click.pass_context
def farm_pause(ctx: click.Context) -> None:
    """Hand no builder a job until resumed (builds under way finish)."""
    with store_transaction(settings_of(ctx)) as connection:
        pause_farm(connection, "operator")
    out.print("the farm is paused: builds under way finish, no new one starts")


@farm.command("resume")
@click.pass_context
def farm_resume(ctx: click.Context) -> None:
    """Build again (lifts a pause for low disk too)."""
    with store_transaction(settings_of(ctx)) as connection:
        resumed = resume_farm(connection)
    out.print("the farm builds again" if resumed else "the farm was not paused")


@click.command()
@click.option("--master", default=None, help="The master's URL (default: this host and port).")
@click.option("--token", default=None, help=f"An admin token (default: <data_dir>/{TOKEN_FILE}).")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between refreshes.")
@click.pass_context
def monitor(ctx: click.Context, master: str | None, token: str | None, interval: float) -> None:
    """The farm in the terminal: builders, their readings, and keys to command them."""
    from wheelfarm.monitor.tui import MonitorApp  # Textual loads only for this command

    settings = settings_of(ctx)
    if token is None:
        path = settings.data_dir / TOKEN_FILE
        if not path.exists():
            raise NotFound(f"no --token given and no {path}")
        token = path.read_text().strip()
    MonitorApp(master or settings.site_url, token, interval=interval).run()
