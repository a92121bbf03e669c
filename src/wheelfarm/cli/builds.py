"""Builds and wheels: ``builds``, ``rebuild``, ``skip``, ``unskip``, ``remove`` and ``import``."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import click
from sqlalchemy import Connection, delete, select

from wheelfarm.app.parts import store_transaction
from wheelfarm.cli.console import err, out, settings_of
from wheelfarm.errors import NotFound, WheelfarmError
from wheelfarm.farm import registry
from wheelfarm.farm.failures import retriage_builds
from wheelfarm.farm.jobs import JobState, schedule_project
from wheelfarm.farm.listings import BuildRow, list_builds
from wheelfarm.farm.rebuilds import rebuild_project, rebuild_target
from wheelfarm.farm.triage import CATEGORIES
from wheelfarm.farm.unserved import unserved_targets
from wheelfarm.names import NormalizedName, canonical
from wheelfarm.store.dialect import upsert
from wheelfarm.store.marks import mark_changed
from wheelfarm.store.schema import projects, skips
from wheelfarm.words import plural

__all__ = [
    "UnknownProject",
    "build_totals",
    "builds",
    "import_command",
    "rebuild",
    "remove",
    "skip",
    "unskip",
]


class UnknownProject(WheelfarmError):
    """A command names a project the store has never heard of: most likely a typo."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no project named {name!r}")
        self.name = name


def _known(connection: Connection, name: str) -> NormalizedName:
    """The canonical name of a project the store holds (live or not), else UnknownProject."""
    project = canonical(name)
    found = connection.execute(select(projects.c.name).where(projects.c.name == project)).first()
    if found is None:
        raise UnknownProject(name)
    return project


def _skip(connection: Connection, project: str, version: str | None, reason: str) -> None:
    """Record an operator's skip ('' as the version skips every release)."""
    row = {"project": project, "version": version or "", "reason": reason}
    connection.execute(upsert(connection, skips, row, ["project", "version"]))
    mark_changed(connection, [project])


def _reschedule(connection: Connection, project: str) -> None:
    schedule_project(
        connection, canonical(project), registry.list_targets(connection), now=time.time()
    )


def _say_unserved(connection: Connection, silence_minutes: float) -> None:
    """One line (on stderr) per target whose pending jobs no builder is there to take."""
    now = time.time()
    for target in unserved_targets(connection, now=now, silence_seconds=silence_minutes * 60):
        err.print(target.describe(now), style="yellow", markup=False, highlight=False)


_Command = TypeVar("_Command", bound=Callable[..., object])


def failure_options(command: _Command) -> _Command:
    """``--category`` and ``--retriage`` of ``wheelfarm builds`` (failure triage)."""
    command = click.option(
        "--retriage",
        is_flag=True,
        help="First read every stored failure's log again with the current rules.",
    )(command)
    return click.option(
        "--category",
        type=click.Choice(CATEGORIES),
        help="Only failed builds of this category (implies --failed).",
    )(command)


def _retriage(connection: Connection) -> None:
    def progress(done: int, total: int) -> None:
        err.print(
            f"re-triaged {done} of {plural(total, 'failed build')}", markup=False, highlight=False
        )

    count = retriage_builds(connection, progress=progress)
    err.print(
        f"re-triaged {plural(count.read, 'failed build')}: {count.changed} changed",
        markup=False,
        highlight=False,
    )


@click.command("builds")
@click.option("--failed", is_flag=True, help="Only failed builds.")
@click.option("--project", help="Only this project.")
@failure_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def builds(
    ctx: click.Context,
    failed: bool,
    project: str | None,
    category: str | None,
    retriage: bool,
    as_json: bool,
) -> None:
    """The build queue and its outcomes, per release and target."""
    with store_transaction(settings_of(ctx), existing=True) as connection:
        if retriage:
            _retriage(connection)
        found = list_builds(
            connection,
            project=_known(connection, project) if project else None,
            failed_only=failed,
            category=category,
        )
        _say_unserved(connection, settings_of(ctx).builder_silence_minutes)
    if as_json:
        out.print_json(json.dumps([row.as_json() for row in found]))
        return
    for row in found:
        files = ", ".join(row.files) or row.reason or ""
        status = (
            f"{row.status} [{row.category or 'unknown'}]" if row.status == "failed" else row.status
        )
        out.print(
            f"{row.project} {row.version} {row.target}: {status}  {files}",
            markup=False,
            highlight=False,
        )
    out.print(build_totals(found), markup=False, highlight=False)


def build_totals(found: list[BuildRow]) -> str:
    """The totals line under a listing: "3 builds: 2 built, 1 failed" (states in queue order)."""
    counts = Counter(row.status for row in found)
    order = [state.value for state in JobState]
    states = sorted(
        counts,
        key=lambda state: (state not in order, order.index(state) if state in order else 0, state),
    )
    by_state = ", ".join(f"{counts[state]} {state}" for state in states)
    return plural(len(found), "build") + (f": {by_state}" if by_state else "")


@click.command()
@click.argument("name", required=False)
@click.argument("version", required=False)
@click.option("--target", help="Only this target.")
@click.option("--reason", help="Why (shown on the project page with the build number).")
@click.option("--all", "everything", is_flag=True, help="Every built release of --target.")
@click.option(
    "--built-before",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
    help="With --all: only wheels built before this time (UTC).",
)
@click.pass_context
def rebuild(
    ctx: click.Context,
    name: str | None,
    version: str | None,
    target: str | None,
    reason: str | None,
    everything: bool,
    built_before: datetime | None,
) -> None:
    """Build a project (or release) again: built wheels get the next build tag, failed builds
    are queued again; with --all, every built release of a target, in the background."""
    if everything == (name is not None):
        raise click.UsageError("give a project NAME, or --all with --target (not both)")
    if everything and target is None:
        raise click.UsageError("--all needs --target: a mass rebuild is one target's")
    if built_before is not None and not everything:
        raise click.UsageError("--built-before goes with --all")
    with store_transaction(settings_of(ctx), existing=True) as connection:
        if name is not None:
            project = _known(connection, name)
            done = rebuild_project(
                connection, project, version, target, reason=reason, now=time.time()
            )
        else:
            cutoff = built_before.replace(tzinfo=UTC).timestamp() if built_before else None
            done = rebuild_target(
                connection, target or "", built_before=cutoff, reason=reason, now=time.time()
            )
    for rebuilt, release, target_name, number in done.renumbered:
        out.print(f"{rebuilt} {release} {target_name}: build {number}", markup=False)
    where = f"{target} in the background" if everything else canonical(name or "")
    out.print(
        f"queued {plural(done.queued, 'build')} of {where} again "
        f"({len(done.renumbered)} with a new build number, {done.failed} failed before)",
        markup=False,
    )


@click.command()
@click.argument("name")
@click.argument("version", required=False)
@click.option("--reason", required=True, help="Why (shown on the project page).")
@click.pass_context
def skip(ctx: click.Context, name: str, version: str | None, reason: str) -> None:
    """Do not build a project (or one release of it)."""
    with store_transaction(settings_of(ctx), existing=True) as connection:
        _skip(connection, _known(connection, name), version, reason)
        _reschedule(connection, name)
    out.print(f"skipping {canonical(name)} {version or '(every release)'}: {reason}")


@click.command()
@click.argument("name")
@click.argument("version", required=False)
@click.pass_context
def unskip(ctx: click.Context, name: str, version: str | None) -> None:
    """Build a skipped project (or release) again."""
    with store_transaction(settings_of(ctx), existing=True) as connection:
        removed = connection.execute(
            delete(skips).where(
                skips.c.project == canonical(name), skips.c.version == (version or "")
            )
        ).rowcount
        if not removed:
            raise NotFound(f"a skip of {canonical(name)} {version or '(every release)'}")
        mark_changed(connection, [canonical(name)])
        _reschedule(connection, name)
    out.print(f"no longer skipping {canonical(name)} {version or ''}".rstrip())


@click.command("remove")
@click.argument("name")
@click.argument("version", required=False)
@click.option("--skip", "skip_reason", help="Also skip it from now on, for this reason.")
@click.pass_context
def remove(ctx: click.Context, name: str, version: str | None, skip_reason: str | None) -> None:
    """Unpublish our wheels of a project (or release); without --skip they are built again."""
    from wheelfarm.farm.wheels import remove_wheels  # with intake: pydantic, pyelftools

    settings = settings_of(ctx)
    project = canonical(name)
    with store_transaction(settings, existing=True) as connection:
        _known(connection, name)
        removed = remove_wheels(connection, project, version, settings.wheel_dir)
        if skip_reason:
            _skip(connection, project, version, skip_reason)
        _reschedule(connection, project)
    out.print(
        f"removed {plural(len(removed.files), 'wheel')} and {plural(removed.jobs, 'job')} "
        f"of {project} "
        f"{version or '(every release)'}"
        + (f"; skipping it: {skip_reason}" if skip_reason else "; it will be built again")
    )


@click.command("import")
@click.argument("wheels", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.pass_context
def import_command(ctx: click.Context, wheels: tuple[Path, ...]) -> None:
    """Publish wheels built elsewhere, validated like a builder's upload."""
    from wheelfarm.farm.wheels import ImportRefused, import_wheel  # the intake: see remove

    settings = settings_of(ctx)
    refused = 0
    for path in wheels:
        try:
            with store_transaction(settings) as connection:
                name = import_wheel(connection, path, settings.wheel_dir, now=time.time())
            out.print(f"imported {name}", markup=False)
        except ImportRefused as error:
            refused += 1
            err.print(str(error), style="red", markup=False)
    if refused:
        sys.exit(1)
