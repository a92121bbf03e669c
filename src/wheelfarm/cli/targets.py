"""``wheelfarm targets``: the platforms wheels are built for."""

from __future__ import annotations

import json
import time

import click

from wheelfarm.app.parts import store_transaction
from wheelfarm.cli.console import err, out, settings_of
from wheelfarm.cli.output import targets_json
from wheelfarm.errors import NotFound
from wheelfarm.farm import registry
from wheelfarm.farm.dependencies import list_distros, set_target_distro, target_distros
from wheelfarm.farm.distros import check_distro_name
from wheelfarm.farm.jobs import projects_with_sources, schedule_target
from wheelfarm.targets import Target, local_target
from wheelfarm.words import plural

__all__ = ["targets"]

_BACKFILL_CHUNK = 500  # projects per transaction when a new target's backlog is queued


@click.group()
def targets() -> None:
    """The platforms wheels are built for."""


@targets.command("add")
@click.argument("name", required=False)
@click.option("--platform", "platforms", multiple=True, help="Another platform it accepts.")
@click.option("--distro", help="The distro its wheels run on (for system dependencies).")
@click.pass_context
def targets_add(
    ctx: click.Context, name: str | None, platforms: tuple[str, ...], distro: str | None
) -> None:
    """Add a target, e.g. cp311-cp311-linux_armv7l (default: this machine's interpreter)."""
    settings = settings_of(ctx)
    target = Target.parse(name, platforms) if name else local_target()
    distro = distro or settings.distro_of(target.name)
    if distro is not None:
        check_distro_name(distro)
    with store_transaction(settings) as connection:
        registry.add_target(connection, target, distro)
        names = projects_with_sources(connection)
    shown = ", ".join(target.platforms[:3]) + (", ..." if len(target.platforms) > 3 else "")
    accepts = plural(len(target.platforms), "platform")
    out.print(f"added target {target.name}: accepts {accepts} ({shown})")
    queued = 0
    for start in range(0, len(names), _BACKFILL_CHUNK):  # short transactions: builders go on
        with store_transaction(settings) as connection:
            chunk = names[start : start + _BACKFILL_CHUNK]
            queued += schedule_target(connection, target, chunk, now=time.time())
    out.print(
        f"queued {plural(queued, 'build')} of existing releases for {target.name} (not urgent)"
    )


@targets.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def targets_list(ctx: click.Context, as_json: bool) -> None:
    """The configured targets."""
    with store_transaction(settings_of(ctx), existing=True) as connection:
        found = registry.list_targets(connection)
        distro_of = target_distros(connection)
    if as_json:
        out.print_json(json.dumps(targets_json(found, distro_of)))
        return
    for target in found:
        distro = distro_of.get(target.name) or "no distro"
        out.print(
            f"{target.name}  (Python {target.python}, {plural(len(target.platforms), 'platform')}, "
            f"{distro})"
        )
    out.print(plural(len(found), "target"))


@targets.command("set-distro")
@click.argument("name")
@click.argument("distro", required=False)
@click.pass_context
def targets_set_distro(ctx: click.Context, name: str, distro: str | None) -> None:
    """Say which distro a target's wheels run on (without DISTRO: none)."""
    if distro is not None:
        check_distro_name(distro)
    with store_transaction(settings_of(ctx)) as connection:
        if not set_target_distro(connection, name, distro):
            raise NotFound(f"target {name!r}")
        loaded = {d.name for d in list_distros(connection)}
    if distro is None:
        out.print(f"target {name} has no distro now: its wheels' apt lines list every package")
        return
    out.print(f"target {name} runs on {distro}")
    if distro not in loaded:
        err.print(f"distro {distro} has no package list yet: wheelfarm distros load FILE")


@targets.command("remove")
@click.argument("name")
@click.pass_context
def targets_remove(ctx: click.Context, name: str) -> None:
    """Stop building for a target (wheels already built stay)."""
    with store_transaction(settings_of(ctx)) as connection:
        if not registry.remove_target(connection, name):
            raise NotFound(f"target {name!r}")
    out.print(f"removed target {name}")
