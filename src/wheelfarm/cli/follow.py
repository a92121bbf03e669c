"""Following the upstream: ``sync``, ``follow``, ``status``, ``show``, ``audit`` and ``add``."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter

import click

from wheelfarm.app.parts import follow_rounds, open_follower, schedule_synced
from wheelfarm.cli.console import err, out, progress_bar, settings_of, until_stopped
from wheelfarm.cli.output import counts_json, project_json, project_table
from wheelfarm.config import Settings
from wheelfarm.errors import UpstreamError, WheelfarmError
from wheelfarm.farm.jobs import prioritise, schedule_project
from wheelfarm.farm.registry import list_targets
from wheelfarm.guards import SpaceWatch
from wheelfarm.names import canonical
from wheelfarm.store.journal import position
from wheelfarm.store.views import ProjectStatus, count_store, live_project_names, read_project
from wheelfarm.upstream.diff import DifferenceKind
from wheelfarm.upstream.follow import Follower, ProjectSync
from wheelfarm.words import plural

__all__ = ["add", "audit", "follow", "keep_following", "show", "status", "sync"]

# The plural of each kind of difference, for counts ("1024 files missing here").
_KIND_PLURAL = {
    DifferenceKind.PROJECT_MISSING: "projects missing here",
    DifferenceKind.PROJECT_EXTRA: "projects gone upstream",
    DifferenceKind.RELEASE_MISSING: "releases missing here",
    DifferenceKind.RELEASE_EXTRA: "releases gone upstream",
    DifferenceKind.FILE_MISSING: "files missing here",
    DifferenceKind.FILE_EXTRA: "files gone upstream",
    DifferenceKind.YANK: "yanks differ",
    DifferenceKind.FILE_DETAILS: "file details differ",
    DifferenceKind.DISPLAY_NAME: "display names differ",
    DifferenceKind.SUMMARY: "summaries differ",
}


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
            counts = Counter(d.kind for d in result.differences)
            summary = ", ".join(
                plural(n, kind.value, _KIND_PLURAL[kind]) for kind, n in counts.most_common()
            )
            out.print(f"  {result.name}: {summary}", markup=False, highlight=False)
        if detail:
            for difference in result.differences:
                out.print(f"  {difference}", markup=False, highlight=False)
    return failed


def _sync_named(follower: Follower, names: list[str], *, urgent: bool = False) -> int:
    """Sync the named projects and queue their builds; returns how many failed."""
    with progress_bar("syncing projects") as progress:
        results = follower.sync_projects(names, progress=progress)
    synced = [r.name for r in results if not r.error]
    queued, configured = schedule_synced(follower.engine, synced, urgent=urgent)
    if queued:
        out.print(f"queued {plural(queued, 'build')} for {plural(configured, 'target')}")
    failed = _print_syncs(results, detail=False)
    changed = sum(len(r.differences) for r in results)
    out.print(
        f"synced {plural(len(results), 'project')}: {plural(changed, 'change')} applied, "
        f"{failed} failed"
    )
    return failed


def _sync_changelog(follower: Follower, reconcile: bool, urgent_serials: int) -> int:
    """Apply the changelog, then (``reconcile``) read the pages it left unreconciled.

    Their builds are urgent only after a catch-up that started near the head (at most
    ``urgent_serials`` behind, the ``urgent_catch_up_serials`` setting): a larger one is backlog.
    """
    with progress_bar("following the changelog") as progress:
        summary = follower.catch_up(progress=progress)
    out.print(
        f"applied {plural(summary.events, 'event')} (serial {summary.start_serial} to "
        f"{summary.end_serial}), {plural(summary.rejected, 'row')} rejected"
    )
    if not reconcile:
        return 0
    dirty = follower.dirty_projects()
    if not dirty:
        return 0
    return _sync_named(follower, list(dirty), urgent=summary.near_head(urgent_serials))


def _report_round_error(error: WheelfarmError) -> None:
    err.print(f"error: {error}; trying again", style="red", markup=False)


def keep_following(
    settings: Settings, stop: threading.Event, space: SpaceWatch | None = None
) -> None:
    """Sync (the named projects, or the changelog) and queue builds, round after round.

    It returns when ``stop`` is set, the event :func:`until_stopped` yields (or by its
    exception). With ``space`` (``up``), a full disk pauses the rounds instead of ending the
    command.
    """
    names = list(settings.projects)

    def one_round(follower: Follower) -> None:
        if names:
            _sync_named(follower, names)
        else:
            _sync_changelog(follower, True, settings.urgent_catch_up_serials)

    with open_follower(settings, with_changelog=not names) as follower:
        follow_rounds(follower, one_round, settings.poll_seconds, _report_round_error, space, stop)


@click.command()
@click.option("--project", "projects", multiple=True, help="Sync only this project (repeatable).")
@click.option("--no-reconcile", is_flag=True, help="Apply changelog events without page reads.")
@click.pass_context
def sync(ctx: click.Context, projects: tuple[str, ...], no_reconcile: bool) -> None:
    """Catch up with the upstream as it was when the command started, then exit."""
    settings = settings_of(ctx)
    names = list(projects or settings.projects)
    with open_follower(settings, with_changelog=not names) as follower:
        failed = (
            _sync_named(follower, names)
            if names
            else _sync_changelog(follower, not no_reconcile, settings.urgent_catch_up_serials)
        )
    sys.exit(1 if failed else 0)


@click.command()
@click.pass_context
def follow(ctx: click.Context) -> None:
    """Keep following the upstream until stopped (SIGINT or SIGTERM).

    A round that fails (the upstream down past every retry) is reported and tried again after
    the poll interval; what earlier rounds applied stays applied.
    """
    with until_stopped("stopped; everything applied so far is saved") as stopping:
        keep_following(settings_of(ctx), stopping)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Counts of what we hold and the last changelog serial applied."""
    settings = settings_of(ctx)
    with open_follower(settings, with_changelog=False, existing=True) as follower:
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


@click.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def show(ctx: click.Context, name: str, as_json: bool) -> None:
    """What we hold for one live project."""
    settings = settings_of(ctx)
    with (
        open_follower(settings, with_changelog=False, existing=True) as follower,
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


@click.command()
@click.option("--project", "projects", multiple=True, help="Audit only this project (repeatable).")
@click.option("--fix", is_flag=True, help="Repair every difference found.")
@click.pass_context
def audit(ctx: click.Context, projects: tuple[str, ...], fix: bool) -> None:
    """Compare what we hold with the upstream's pages; exit 1 when they differ (unless --fix)."""
    settings = settings_of(ctx)
    with open_follower(settings, with_changelog=False, existing=not fix) as follower:
        names = list(projects or settings.projects)
        if not names:
            with follower.engine.connect() as connection:
                names = list(live_project_names(connection))
        with progress_bar("auditing projects") as progress:
            results = follower.sync_projects(names, fix=fix, progress=progress)
    failed = _print_syncs(results, detail=True)
    differing = sum(1 for r in results if r.differences)
    verb = "repaired" if fix else "found"
    out.print(
        f"audited {plural(len(results), 'project')}: {differing} "
        f"{'differs' if differing == 1 else 'differ'} ({verb}), {failed} failed"
    )
    sys.exit(1 if failed or (differing and not fix) else 0)


@click.command()
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
    out.print(
        f"{canonical(name)}: {plural(len(result.differences), 'change')}, "
        f"{plural(queued, 'build')} queued first"
    )
