"""Farm administration commands: targets, builders, skip and unskip."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import click
import httpx
from sqlalchemy import Connection, delete, select

from wheelfarm.builder.loop import BuilderOptions, MasterClient, run_builder
from wheelfarm.builder.sandbox import BuildLimits
from wheelfarm.cli.console import err, out, settings_of
from wheelfarm.errors import WheelfarmError
from wheelfarm.farm import registry
from wheelfarm.farm.dependencies import (
    dependency_details,
    list_distros,
    load_distro,
    set_target_distro,
    target_distros,
    wheel_dependencies,
)
from wheelfarm.farm.distros import check_distro_name, read_package_list, snapshot
from wheelfarm.farm.jobs import schedule_project
from wheelfarm.farm.listings import list_builds, requeue_failed
from wheelfarm.farm.wheels import ImportRefused, import_wheel, remove_wheels
from wheelfarm.http import RetryPolicy
from wheelfarm.names import canonical
from wheelfarm.store.database import open_store
from wheelfarm.store.dialect import upsert
from wheelfarm.store.marks import mark_changed
from wheelfarm.store.schema import build_files, skips
from wheelfarm.targets import Target, local_target

__all__ = [
    "builder",
    "builders",
    "builds_command",
    "dependencies_command",
    "distros",
    "import_command",
    "rebuild",
    "remove_command",
    "skip",
    "targets",
    "unskip",
]


@contextmanager
def _transaction(ctx: click.Context) -> Iterator[Connection]:
    engine = open_store(settings_of(ctx).database_url)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


class NotFound(WheelfarmError):
    """The thing a command names does not exist."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} does not exist")


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
    target = Target.parse(name, platforms) if name else local_target()
    distro = distro or settings_of(ctx).distro_of(target.name)
    if distro is not None:
        check_distro_name(distro)
    with _transaction(ctx) as connection:
        registry.add_target(connection, target, distro)
    shown = ", ".join(target.platforms[:3]) + (", ..." if len(target.platforms) > 3 else "")
    out.print(f"added target {target.name}: accepts {len(target.platforms)} platforms ({shown})")


@targets.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def targets_list(ctx: click.Context, as_json: bool) -> None:
    """The configured targets."""
    with _transaction(ctx) as connection:
        found = registry.list_targets(connection)
        distro_of = target_distros(connection)
    if as_json:
        out.print_json(
            json.dumps(
                [
                    {"name": t.name, "platforms": t.platforms, "distro": distro_of.get(t.name)}
                    for t in found
                ]
            )
        )
        return
    for target in found:
        distro = distro_of.get(target.name) or "no distro"
        out.print(
            f"{target.name}  (Python {target.python}, {len(target.platforms)} platforms, {distro})"
        )


@targets.command("set-distro")
@click.argument("name")
@click.argument("distro", required=False)
@click.pass_context
def targets_set_distro(ctx: click.Context, name: str, distro: str | None) -> None:
    """Say which distro a target's wheels run on (without DISTRO: none)."""
    if distro is not None:
        check_distro_name(distro)
    with _transaction(ctx) as connection:
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
    with _transaction(ctx) as connection:
        if not registry.remove_target(connection, name):
            raise NotFound(f"target {name!r}")
    out.print(f"removed target {name}")


@click.group()
def builders() -> None:
    """The machines that build (each with its own token)."""


@builders.command("add")
@click.argument("name")
@click.pass_context
def builders_add(ctx: click.Context, name: str) -> None:
    """Register a builder and print its token (shown only this once)."""
    with _transaction(ctx) as connection:
        token = registry.add_builder(connection, name, now=time.time())
    out.print(f"builder {name} added; its token (keep it secret, it is not shown again):")
    out.print(token, markup=False, highlight=False)


@builders.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def builders_list(ctx: click.Context, as_json: bool) -> None:
    """The registered builders and when they were last seen."""
    with _transaction(ctx) as connection:
        found = registry.list_builders(connection)
    if as_json:
        out.print_json(json.dumps([asdict(b) for b in found]))
        return
    for builder in found:
        seen = (
            time.strftime("%Y-%m-%d %H:%M", time.gmtime(builder.last_seen))
            if builder.last_seen
            else "never"
        )
        told = f"  told to {builder.command}" if builder.command else ""
        out.print(f"{builder.name}  target {builder.target or '?'}  last seen {seen}{told}")


@builders.command("remove")
@click.argument("name")
@click.pass_context
def builders_remove(ctx: click.Context, name: str) -> None:
    """Revoke a builder's token at once."""
    with _transaction(ctx) as connection:
        if not registry.remove_builder(connection, name):
            raise NotFound(f"builder {name!r}")
    out.print(f"removed builder {name}; its token no longer works")


_COMMANDS = {
    "skip": ("skip", "it ends the build under way at its next heartbeat; the job fails as skipped"),
    "pause": ("pause", "it finishes the build under way, then claims nothing until resumed"),
    "resume": (None, "it claims jobs again"),
    "stop": ("stop", "it ends the build under way (the job is queued again) and exits"),
}


def _tell(ctx: click.Context, name: str, verb: str) -> None:
    command, effect = _COMMANDS[verb]
    with _transaction(ctx) as connection:
        if not registry.set_command(connection, name, command):
            raise NotFound(f"builder {name!r}")
    out.print(f"told builder {name} to {verb}: {effect}")


def _command_for(verb: str) -> click.Command:
    @click.command(verb, help=f"Tell a builder to {verb}: {_COMMANDS[verb][1]}.")
    @click.argument("name")
    @click.pass_context
    def tell(ctx: click.Context, name: str) -> None:
        _tell(ctx, name, verb)

    return tell


for _verb in _COMMANDS:
    builders.add_command(_command_for(_verb))


def _skip(connection: Connection, project: str, version: str | None, reason: str) -> None:
    """Record an operator's skip ('' as the version skips every release)."""
    row = {"project": project, "version": version or "", "reason": reason}
    connection.execute(upsert(connection, skips, row, ["project", "version"]))
    mark_changed(connection, [project])


def _reschedule(connection: Connection, project: str) -> None:
    schedule_project(
        connection, canonical(project), registry.list_targets(connection), now=time.time()
    )


@click.command()
@click.argument("name")
@click.argument("version", required=False)
@click.option("--reason", required=True, help="Why (shown on the project page).")
@click.pass_context
def skip(ctx: click.Context, name: str, version: str | None, reason: str) -> None:
    """Do not build a project (or one release of it)."""
    with _transaction(ctx) as connection:
        _skip(connection, canonical(name), version, reason)
        _reschedule(connection, name)
    out.print(f"skipping {canonical(name)} {version or '(every release)'}: {reason}")


@click.command()
@click.argument("name")
@click.argument("version", required=False)
@click.pass_context
def unskip(ctx: click.Context, name: str, version: str | None) -> None:
    """Build a skipped project (or release) again."""
    with _transaction(ctx) as connection:
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


@click.command("builder")
@click.option(
    "--master", required=True, help="The master's URL, e.g. http://master.example.org:8080"
)
@click.option(
    "--token",
    envvar="WHEELFARM_BUILDER_TOKEN",
    required=True,
    help="This builder's token (or $WHEELFARM_BUILDER_TOKEN, which ps does not show).",
)
@click.option("--work", type=click.Path(path_type=Path), help="Scratch space for builds.")
@click.option("--label", help="A label shown in monitoring.")
@click.option(
    "--timeout",
    type=float,
    default=3 * 3600.0,
    show_default=True,
    help="Seconds before a build is killed.",
)
@click.option(
    "--pip-option",
    "pip_options",
    multiple=True,
    help="Extra option for pip wheel (repeatable), e.g. --extra-index-url=URL.",
)
@click.pass_context
def builder(
    ctx: click.Context,
    master: str,
    token: str,
    work: Path | None,
    label: str | None,
    timeout: float,
    pip_options: tuple[str, ...],
) -> None:
    """Build wheels for a master until stopped (SIGINT or SIGTERM)."""
    settings = settings_of(ctx)
    options = BuilderOptions(
        workdir=work or settings.data_dir / "build",
        label=label,
        limits=BuildLimits(timeout=timeout),
        pip_options=pip_options or settings.pip_options,
    )
    stop = threading.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):  # end the build, report, exit
        signal.signal(signal_number, lambda *_: stop.set())
    policy = RetryPolicy(retries=settings.retries, initial_wait=settings.retry_wait)
    with httpx.Client(timeout=settings.http_timeout) as http:
        run_builder(MasterClient(master, token, http, policy), options, stop)
    out.print("builder stopped")


@click.command("builds")
@click.option("--failed", is_flag=True, help="Only failed builds.")
@click.option("--project", help="Only this project.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def builds_command(ctx: click.Context, failed: bool, project: str | None, as_json: bool) -> None:
    """The build queue and its outcomes, per release and target."""
    with _transaction(ctx) as connection:
        found = list_builds(
            connection, project=canonical(project) if project else None, failed_only=failed
        )
    if as_json:
        out.print_json(json.dumps([row.as_json() for row in found]))
        return
    for row in found:
        files = ", ".join(row.files) or row.reason or ""
        out.print(
            f"{row.project} {row.version} {row.target}: {row.status}  {files}",
            markup=False,
            highlight=False,
        )


@click.command()
@click.argument("name")
@click.argument("version", required=False)
@click.option("--target", help="Only this target.")
@click.pass_context
def rebuild(ctx: click.Context, name: str, version: str | None, target: str | None) -> None:
    """Queue failed builds of a project (or release) again."""
    with _transaction(ctx) as connection:
        count = requeue_failed(connection, canonical(name), version, target, now=time.time())
    out.print(f"queued {count} failed builds of {canonical(name)} again")


@click.command("import")
@click.argument("wheels", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.pass_context
def import_command(ctx: click.Context, wheels: tuple[Path, ...]) -> None:
    """Publish wheels built elsewhere, validated like a builder's upload."""
    wheel_dir = settings_of(ctx).wheel_dir
    refused = 0
    for path in wheels:
        try:
            with _transaction(ctx) as connection:
                name = import_wheel(connection, path, wheel_dir, now=time.time())
            out.print(f"imported {name}", markup=False)
        except ImportRefused as error:
            refused += 1
            err.print(str(error), style="red", markup=False)
    if refused:
        sys.exit(1)


@click.command("remove")
@click.argument("name")
@click.argument("version", required=False)
@click.option("--skip", "skip_reason", help="Also skip it from now on, for this reason.")
@click.pass_context
def remove_command(
    ctx: click.Context, name: str, version: str | None, skip_reason: str | None
) -> None:
    """Unpublish our wheels of a project (or release); without --skip they are built again."""
    project = canonical(name)
    with _transaction(ctx) as connection:
        removed = remove_wheels(connection, project, version, settings_of(ctx).wheel_dir)
        if skip_reason:
            _skip(connection, project, version, skip_reason)
        _reschedule(connection, project)
    out.print(
        f"removed {len(removed.files)} wheels and {removed.jobs} jobs of {project} "
        f"{version or '(every release)'}"
        + (f"; skipping it: {skip_reason}" if skip_reason else "; it will be built again")
    )


@click.group()
def distros() -> None:
    """The base images targets run on, and the packages they already have."""


@distros.command("load")
@click.argument("file")
@click.option("--name", help="The distro's name (default: the file name without .txt).")
@click.pass_context
def distros_load(ctx: click.Context, file: str, name: str | None) -> None:
    """Replace a distro's package list with FILE (a path, or a shipped list's name)."""
    default_name, packages, source = read_package_list(file)
    distro = check_distro_name(name or default_name)
    with _transaction(ctx) as connection:
        count = load_distro(connection, distro, packages, source)
    out.print(f"loaded {count} packages for distro {distro} from {source}", markup=False)


@distros.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def distros_list(ctx: click.Context, as_json: bool) -> None:
    """The loaded distros, their package counts and the targets on them."""
    with _transaction(ctx) as connection:
        found = list_distros(connection)
    if as_json:
        out.print_json(json.dumps([asdict(d) for d in found]))
        return
    for distro in found:
        used = ", ".join(distro.targets) or "no target"
        out.print(
            f"{distro.name}  {distro.packages} packages  ({used})  from {distro.source}",
            markup=False,
        )


@distros.command("snapshot")
def distros_snapshot() -> None:
    """Print this machine's installed packages, one a line (run it on a fresh base image)."""
    click.echo("\n".join(snapshot()))


@click.command("dependencies")
@click.argument("filenames", nargs=-1)
@click.option("--project", help="Every file of this project.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def dependencies_command(
    ctx: click.Context, filenames: tuple[str, ...], project: str | None, as_json: bool
) -> None:
    """What published wheels need from the system: apt packages beyond the target's distro."""
    with _transaction(ctx) as connection:
        names = list(filenames)
        if project is not None:
            query = select(build_files.c.filename).where(
                build_files.c.project == canonical(project)
            )
            names += connection.execute(query.order_by(build_files.c.filename)).scalars()
        needed = wheel_dependencies(connection, names)
        details = {name: dependency_details(connection, name) for name in names}
    if as_json:
        report = {
            name: {"apt": list(needed[name].apt), "unresolved": list(needed[name].unresolved)}
            | {"bundled": details[name]["bundled"], "problems": details[name]["problem"]}
            for name in names
        }
        out.print_json(json.dumps(report))
        return
    for name in names:
        apt, unresolved = needed[name]
        line = f"{name}: apt {' '.join(apt) or '-'}"
        line += f"; unresolved {' '.join(unresolved)}" if unresolved else ""
        out.print(line, markup=False, highlight=False)
        for problem in details[name]["problem"]:
            out.print(f"  problem: {problem}", markup=False, highlight=False)
