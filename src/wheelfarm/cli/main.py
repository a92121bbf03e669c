"""The command line: parse, build the objects from settings, delegate, report."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

import click
import httpx
import uvicorn
from rich.logging import RichHandler
from sqlalchemy.exc import DBAPIError

from wheelfarm import __version__
from wheelfarm.app import open_follower, retry_policy
from wheelfarm.builder.loop import BuilderOptions, MasterClient, run_builder
from wheelfarm.cli.console import err, out, progress_bar, settings_of
from wheelfarm.cli.farm import (
    builder,
    builders,
    builds_command,
    dependencies_command,
    distros,
    import_command,
    rebuild,
    remove_command,
    skip,
    targets,
    unskip,
)
from wheelfarm.cli.output import counts_json, project_json, project_table
from wheelfarm.config import load_settings
from wheelfarm.errors import UpstreamError, WheelfarmError
from wheelfarm.farm.api import FarmConfig, create_builder_app
from wheelfarm.farm.dependencies import set_target_distro, target_distros
from wheelfarm.farm.jobs import prioritise, schedule_project
from wheelfarm.farm.registry import add_builder, add_target, list_targets, remove_builder
from wheelfarm.names import canonical
from wheelfarm.publish.incremental import publish_dirty
from wheelfarm.publish.regenerate import write_all
from wheelfarm.publish.scheduler import start_publisher, tree_of
from wheelfarm.store.database import (
    create_store_engine,
    head_revision,
    open_store,
    stored_revision,
    upgrade,
)
from wheelfarm.store.journal import position
from wheelfarm.store.views import ProjectStatus, count_store, live_project_names, read_project
from wheelfarm.targets import local_target
from wheelfarm.upstream.follow import Follower, ProjectSync
from wheelfarm.web.app import (
    ACCESS_LOGGER,
    create_index_app,
    index_server_config,
    serve_index_in_thread,
)
from wheelfarm.web.runner import bind

__all__ = ["main"]


@click.group()
@click.version_option(__version__)
@click.option("--config", type=click.Path(path_type=Path), help="Settings file (TOML).")
@click.option("--upstream", help="Upstream simple index URL.")
@click.option("--database", help="Database URL (sqlite:///... or postgresql://...).")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Where wheelfarm keeps data.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def cli(
    ctx: click.Context,
    config: Path | None,
    upstream: str | None,
    database: str | None,
    data_dir: Path | None,
    verbose: int,
) -> None:
    """wheelfarm: follow an upstream index, build the wheels it lacks, publish them."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(
        level=level, format="%(message)s", handlers=[RichHandler(console=err, show_path=False)]
    )
    flags = {
        "upstream": upstream,
        "database": database,
        "data_dir": str(data_dir) if data_dir else None,
    }
    ctx.obj = load_settings(config, flags=flags)


def _print_syncs(results: list[ProjectSync], *, detail: bool) -> int:
    """Report per-project outcomes (every difference when ``detail``); returns how many failed."""
    failed = 0
    for result in results:
        if result.error:
            failed += 1
            err.print(f"{result.name}: {result.error}", style="red", markup=False)
        elif not result.found:
            err.print(f"{result.name}: not found upstream", style="yellow", markup=False)
        elif result.differences and not detail:
            counts = Counter(d.kind.value for d in result.differences)
            summary = ", ".join(f"{n} {kind}" for kind, n in counts.most_common())
            out.print(f"  {result.name}: {summary}", markup=False, highlight=False)
        if detail:
            for difference in result.differences:
                out.print(f"  {difference}", markup=False, highlight=False)
    return failed


def _schedule(follower: Follower, names: list[str], *, urgent: bool) -> None:
    """Queue the builds the synced projects now need, for every configured target."""
    with follower.engine.begin() as connection:
        configured = list_targets(connection)
        if not configured:
            return
        now = time.time()
        pending = sum(
            schedule_project(connection, canonical(name), configured, now=now, urgent=urgent)
            for name in names
        )
    if pending:
        out.print(f"queued {pending} builds for {len(configured)} targets")


def _sync_named(follower: Follower, names: list[str], *, urgent: bool = False) -> int:
    with progress_bar("syncing projects") as progress:
        results = follower.sync_projects(names, progress=progress)
    _schedule(follower, [r.name for r in results if not r.error], urgent=urgent)
    failed = _print_syncs(results, detail=False)
    changed = sum(len(r.differences) for r in results)
    out.print(f"synced {len(results)} projects: {changed} changes applied, {failed} failed")
    return failed


def _sync_changelog(follower: Follower, reconcile: bool) -> int:
    with progress_bar("following the changelog") as progress:
        summary = follower.catch_up(progress=progress)
    out.print(
        f"applied {summary.events} events (serial {summary.start_serial} to "
        f"{summary.end_serial}), {summary.rejected} rows rejected"
    )
    if not reconcile:
        return 0
    dirty = follower.dirty_projects()
    if not dirty:
        return 0
    return _sync_named(follower, list(dirty), urgent=True)


@cli.command()
@click.option("--project", "projects", multiple=True, help="Sync only this project (repeatable).")
@click.option("--no-reconcile", is_flag=True, help="Apply changelog events without page reads.")
@click.pass_context
def sync(ctx: click.Context, projects: tuple[str, ...], no_reconcile: bool) -> None:
    """Catch up with the upstream as it was when the command started, then exit."""
    settings = settings_of(ctx)
    names = list(projects or settings.projects)
    with open_follower(settings, with_changelog=not names) as follower:
        failed = (
            _sync_named(follower, names) if names else _sync_changelog(follower, not no_reconcile)
        )
    sys.exit(1 if failed else 0)


class _Stop(Exception):
    """Raised by the signal handler so that ``follow`` ends between transactions."""


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


@cli.command()
@click.pass_context
def follow(ctx: click.Context) -> None:
    """Keep following the upstream until stopped (SIGINT or SIGTERM).

    A round that fails (the upstream down past every retry) is reported and tried again after
    the poll interval; what earlier rounds applied stays applied.
    """
    settings = settings_of(ctx)
    names = list(settings.projects)
    try:
        signal.signal(signal.SIGTERM, _raise_stop)
        with open_follower(settings, with_changelog=not names) as follower:
            _follow_forever(follower, names, settings.poll_seconds)
    except (_Stop, KeyboardInterrupt):
        err.print("stopped; everything applied so far is saved")


def _follow_forever(follower: Follower, names: list[str], poll_seconds: float) -> None:
    """Sync (named projects, or the changelog) and queue builds, round after round."""
    while True:
        try:
            if names:
                _sync_named(follower, names)
            else:
                _sync_changelog(follower, reconcile=True)
        except WheelfarmError as error:
            err.print(f"error: {error}; trying again", style="red", markup=False)
        time.sleep(poll_seconds)


@cli.command()
@click.pass_context
def up(ctx: click.Context) -> None:
    """Run everything on this machine: follower, builder API, a local builder and the index.

    The local builder builds for this machine's interpreter; its target is added and its token
    made afresh at each start. The index and the builder API share one port. Stop with Ctrl-C
    (or SIGTERM).
    """
    settings = settings_of(ctx)
    names = list(settings.projects)
    logging.getLogger("wheelfarm.builder.loop").setLevel(logging.INFO)  # show builds as they go
    engine = open_store(settings.database_url)
    target = local_target()
    with engine.begin() as connection:
        if target.name not in {t.name for t in list_targets(connection)}:
            add_target(connection, target)
        distro = settings.distro_of(target.name)
        if distro is not None and target_distros(connection).get(target.name) != distro:
            set_target_distro(connection, target.name, distro)
        remove_builder(connection, "local")
        token = add_builder(connection, "local", now=time.time())
    farm = FarmConfig(index_url=settings.simple_url, wheel_dir=settings.wheel_dir)
    api = create_builder_app(engine, farm)
    settings.www_dir.mkdir(parents=True, exist_ok=True)
    server = serve_index_in_thread(settings.www_dir, settings.host, settings.port, api=api)
    stop = threading.Event()
    http = httpx.Client(timeout=settings.http_timeout)
    client = MasterClient(server.url, token, http, retry_policy(settings))
    options = BuilderOptions(
        workdir=settings.data_dir / "build", label="local", pip_options=settings.pip_options
    )
    builder = threading.Thread(
        target=run_builder, args=(client, options, stop), name="local-builder", daemon=True
    )
    builder.start()
    start_publisher(engine, settings, stop)  # the index: written now, then every change
    following = ", ".join(names) if names else "the whole changelog"
    out.print(
        f"wheelfarm is up: the index at {server.url}/ (pip: --index-url {server.url}/simple/)"
    )
    out.print(f"builder API at {server.url}/docs, building for {target.name}")
    out.print(f"following {following}; wheels go to {farm.wheel_dir}; Ctrl-C stops")
    try:
        signal.signal(signal.SIGTERM, _raise_stop)
        with open_follower(settings, with_changelog=not names) as follower:
            _follow_forever(follower, names, settings.poll_seconds)
    except (_Stop, KeyboardInterrupt):
        err.print("stopping: a build under way is ended and handed back to the queue")
    finally:
        stop.set()
        builder.join(timeout=60)  # it reports the cancelled build while the API still serves
        server.stop()
        http.close()
        engine.dispose()


@cli.command()
@click.option("--all", "everything", is_flag=True, help="Regenerate every project and page.")
@click.pass_context
def write(ctx: click.Context, everything: bool) -> None:
    """Publish the index: the projects changed since the last write (or, with --all, all)."""
    settings = settings_of(ctx)
    engine = open_store(settings.database_url)
    tree = tree_of(settings)
    try:
        if everything:
            with progress_bar("writing the index") as progress:
                report = write_all(
                    engine,
                    tree,
                    upstream_simple_url=settings.simple_url,
                    base_url=settings.site_url,
                    progress=progress,
                )
        else:
            report = publish_dirty(
                engine, tree, upstream_simple_url=settings.simple_url, base_url=settings.site_url
            )
    finally:
        engine.dispose()
    for name in report.changed[:20]:
        out.print(f"  {name}", markup=False, highlight=False)
    if len(report.changed) > 20:
        out.print(f"  ... and {len(report.changed) - 20} more")
    site = "; site pages written" if report.site else ""
    out.print(
        f"wrote {report.projects} projects to {settings.www_dir}: {report.written} files written, "
        f"{report.removed} removed{site}"
    )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Counts of what we hold and the last changelog serial applied."""
    settings = settings_of(ctx)
    with open_follower(settings, with_changelog=False) as follower:
        with follower.engine.connect() as connection:
            counts = count_store(connection)
            serial = position(connection)
        dirty = len(follower.dirty_projects())
    data = counts_json(counts, serial, dirty)
    if as_json:
        out.print_json(json.dumps(data))
        return
    for key, value in data.items():
        label = "last changelog serial applied" if key == "last_serial" else key.replace("_", " ")
        out.print(f"{label}: {value}")


@cli.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def show(ctx: click.Context, name: str, as_json: bool) -> None:
    """What we hold for one live project."""
    settings = settings_of(ctx)
    with (
        open_follower(settings, with_changelog=False) as follower,
        follower.engine.connect() as connection,
    ):
        view = read_project(connection, canonical(name))
    if view.status is not ProjectStatus.LIVE:
        err.print(f"{name}: project is {view.status.value}", style="red", markup=False)
        sys.exit(1)
    if as_json:
        out.print_json(json.dumps(project_json(view)))
    else:
        out.print(project_table(view))


@cli.command()
@click.option("--project", "projects", multiple=True, help="Audit only this project (repeatable).")
@click.option("--fix", is_flag=True, help="Repair every difference found.")
@click.pass_context
def audit(ctx: click.Context, projects: tuple[str, ...], fix: bool) -> None:
    """Compare what we hold with the upstream's pages; exit 1 when they differ (unless --fix)."""
    settings = settings_of(ctx)
    with open_follower(settings, with_changelog=False) as follower:
        names = list(projects or settings.projects)
        if not names:
            with follower.engine.connect() as connection:
                names = list(live_project_names(connection))
        with progress_bar("auditing projects") as progress:
            results = follower.sync_projects(names, fix=fix, progress=progress)
    failed = _print_syncs(results, detail=True)
    differing = sum(1 for r in results if r.differences)
    verb = "repaired" if fix else "found"
    out.print(f"audited {len(results)} projects: {differing} differ ({verb}), {failed} failed")
    sys.exit(1 if failed or (differing and not fix) else 0)


cli.add_command(targets)
cli.add_command(builder)
cli.add_command(builds_command)
cli.add_command(rebuild)
cli.add_command(builders)
cli.add_command(skip)
cli.add_command(unskip)
cli.add_command(import_command)
cli.add_command(remove_command)
cli.add_command(distros)
cli.add_command(dependencies_command)


@cli.command()
@click.argument("name")
@click.argument("version", required=False)
@click.pass_context
def add(ctx: click.Context, name: str, version: str | None) -> None:
    """Read a project from the upstream now and queue its builds ahead of the backlog.

    With named projects configured, only those stay in sync afterwards: add the name to
    `projects` to keep following it.
    """
    settings = settings_of(ctx)
    with open_follower(settings, with_changelog=False) as follower:
        (result,) = follower.sync_projects([name])
        if result.error or not result.found:
            raise UpstreamError(name, result.error or "not found upstream")
        with follower.engine.begin() as connection:
            configured = list_targets(connection)
            queued = schedule_project(
                connection, canonical(name), configured, now=time.time(), urgent=True
            )
            if version is not None:
                queued += prioritise(connection, canonical(name), version)
    out.print(f"{canonical(name)}: {len(result.differences)} changes, {queued} builds queued first")


@cli.command()
@click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False),
    help="The published tree [default: <data_dir>/www].",
)
@click.option("--host", help="Address to listen on [default: the 'host' setting].")
@click.option("--port", type=int, help="Port to listen on [default: the 'port' setting].")
@click.option("--access-log", is_flag=True, help="Log 'METHOD path status' for each request.")
@click.pass_context
def serve(
    ctx: click.Context, root: Path | None, host: str | None, port: int | None, access_log: bool
) -> None:
    """Serve the published index (simple pages, wheels, project pages) over HTTP until stopped."""
    settings = settings_of(ctx)
    root = root if root is not None else settings.data_dir / "www"
    host = host if host is not None else settings.host
    port = port if port is not None else settings.port
    sock = bind(host, port)  # a busy port is a ConfigError: one line, exit status 2
    if access_log:  # plain lines on standard error, one per request, for tools to read
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger = logging.getLogger(ACCESS_LOGGER)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    shown = f"[{host}]" if ":" in host else host
    out.print(f"serving {root} at http://{shown}:{sock.getsockname()[1]}/; Ctrl-C stops")
    server = uvicorn.Server(index_server_config(create_index_app(root, access_log=access_log)))
    # uvicorn stops gracefully on SIGINT/SIGTERM, then raises the signal again for the handler
    # that was there before it: ours, so that a stop is a clean exit (status 0).
    signal.signal(signal.SIGTERM, _raise_stop)
    try:
        server.run(sockets=[sock])
    except (_Stop, KeyboardInterrupt):
        err.print("stopped")


@cli.group()
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


def main(argv: list[str] | None = None) -> Any:
    """Entry point: wheelfarm errors are printed plainly and exit with status 2."""
    try:
        return cli.main(args=argv, prog_name="wheelfarm", standalone_mode=False)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except WheelfarmError as error:
        err.print(f"error: {error}", style="red", markup=False, highlight=False)
        sys.exit(2)
    except DBAPIError as error:  # unreachable database, wrong credentials, damaged schema
        err.print(f"database error: {error.orig}", style="red", markup=False, highlight=False)
        sys.exit(2)
