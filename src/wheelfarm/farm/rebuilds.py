"""Rebuilds: put built (or failed) jobs back in the queue, the built ones under a new build tag.

A file name never gets new bytes (lock files pin names and hashes), so a rebuild of a built
release cannot replace its wheel. The wheel spec has a build tag for exactly this: the rebuilt
job carries the next build number, its builder tags the wheel with it
(:mod:`wheelfarm.builder.build_tags`), intake accepts only that number, and the index then lists
the old wheel and the new one side by side; installers take the higher build number when all
else is equal, and a lock file naming the old wheel still finds it.

A failed job is only queued again: it has no wheel to tell apart, so its number stays. Jobs that
are pending, building or skipped are left alone. An operator's rebuild of one project is urgent
(someone waits for it); a mass rebuild of a target (``--all``) goes to the background, behind
fresh releases.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, select, update

from wheelfarm.errors import NotFound
from wheelfarm.farm.jobs import JobState
from wheelfarm.farm.registry import list_targets
from wheelfarm.names import NormalizedName, build_number
from wheelfarm.store.marks import mark_changed
from wheelfarm.store.schema import build_files, builds, jobs, releases
from wheelfarm.targets import Target

__all__ = ["Rebuilds", "rebuild_project", "rebuild_target"]


@dataclass(frozen=True)
class Rebuilds:
    """What a rebuild queued: failed jobs queued again, and built jobs under a new build number
    (``(project, version, target, number)`` each)."""

    failed: int = 0
    renumbered: tuple[tuple[str, str, str, int], ...] = ()

    @property
    def queued(self) -> int:
        return self.failed + len(self.renumbered)


def _target_named(connection: Connection, name: str) -> Target:
    target = next((t for t in list_targets(connection) if t.name == name), None)
    if target is None:
        raise NotFound(f"target {name!r}")
    return target


def _next_number(
    connection: Connection, project: str, version: str, target: Target, current: int
) -> int:
    """One more than the highest build number of the job and of our wheels that install on the
    target (a pure wheel another target's rebuild made may already carry the next number)."""
    accepted = target.compatible_tags()
    highest = current
    for filename, tags in connection.execute(
        select(build_files.c.filename, build_files.c.tags).where(
            build_files.c.project == project, build_files.c.version == version
        )
    ):
        if {str(tag) for tag in accepted} & set(tags.split()):
            highest = max(highest, build_number(filename))
    return highest + 1


def _requeue(
    connection: Connection,
    rows: Iterable[tuple[str, str, str, str, int]],
    targets: dict[str, Target],
    *,
    reason: str | None,
    urgent: bool,
    now: float,
) -> Rebuilds:
    """Queue the given (project, version, target, state, number) jobs again."""
    failed = 0
    renumbered: list[tuple[str, str, str, int]] = []
    changed: set[str] = set()
    for project, version, target_name, state, number in rows:
        values: dict[str, object] = {
            "state": JobState.PENDING.value,
            "urgent": urgent,
            "reason": None,
            "updated_at": now,
        }
        target = targets.get(target_name)
        if state == JobState.BUILT.value and target is not None:
            number = _next_number(connection, project, version, target, number)
            values |= {"build_number": number, "rebuild_reason": reason}
            renumbered.append((project, version, target_name, number))
        elif state == JobState.FAILED.value:
            failed += 1
        else:
            continue  # built for a target since removed: nothing can build it
        connection.execute(
            update(jobs)
            .where(
                jobs.c.project == project,
                jobs.c.version == version,
                jobs.c.target == target_name,
                jobs.c.state == state,
            )
            .values(values)
        )
        changed.add(project)
    mark_changed(connection, sorted(changed))  # the project page shows the build number
    return Rebuilds(failed, tuple(renumbered))


def rebuild_project(
    connection: Connection,
    project: NormalizedName,
    version: str | None,
    target: str | None,
    *,
    reason: str | None,
    now: float,
) -> Rebuilds:
    """Rebuild a project's (or one release's) built and failed jobs, urgently.

    Raises :class:`~wheelfarm.errors.NotFound` for a release the store never held or a target
    that is not configured.
    """
    if version is not None:
        known = connection.execute(
            select(releases.c.version).where(
                releases.c.project == project, releases.c.version == version
            )
        ).first()
        if known is None:
            raise NotFound(f"release {project} {version}")
    targets = {t.name: t for t in list_targets(connection)}
    if target is not None:
        _target_named(connection, target)
    query = select(
        jobs.c.project, jobs.c.version, jobs.c.target, jobs.c.state, jobs.c.build_number
    ).where(
        jobs.c.project == project,
        jobs.c.state.in_([JobState.BUILT.value, JobState.FAILED.value]),
    )
    if version is not None:
        query = query.where(jobs.c.version == version)
    if target is not None:
        query = query.where(jobs.c.target == target)
    rows = [
        (row.project, row.version, row.target, row.state, row.build_number)
        for row in connection.execute(query.order_by(jobs.c.version, jobs.c.target))
    ]
    return _requeue(connection, rows, targets, reason=reason, urgent=True, now=now)


def rebuild_target(
    connection: Connection,
    target: str,
    *,
    built_before: float | None,
    reason: str | None,
    now: float,
) -> Rebuilds:
    """Rebuild every built job of a target whose wheel was built before ``built_before`` (None:
    every one), in the background queue (not urgent), e.g. after a toolchain regression.

    "Built" is when the build that made the newest wheel serving the job started; a job served
    only by an upstream wheel has none and is left alone (it is skipped, not built).
    """
    chosen = _target_named(connection, target)
    accepted = {str(tag) for tag in chosen.compatible_tags()}
    started: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for row in connection.execute(
        select(
            build_files.c.project,
            build_files.c.version,
            build_files.c.filename,
            build_files.c.tags,
            builds.c.started_at,
        ).join(builds, builds.c.id == build_files.c.build_id)
    ):
        if accepted & set(row.tags.split()):
            started.setdefault((row.project, row.version), []).append(
                (build_number(row.filename), row.started_at)
            )
    chosen_rows = []
    for row in connection.execute(
        select(
            jobs.c.project, jobs.c.version, jobs.c.target, jobs.c.state, jobs.c.build_number
        ).where(jobs.c.target == target, jobs.c.state == JobState.BUILT.value)
    ):
        wheels = started.get((row.project, row.version))
        if not wheels:
            continue
        newest = max(wheels)  # the highest build number, the wheel installers pick
        if built_before is None or newest[1] < built_before:
            chosen_rows.append((row.project, row.version, row.target, row.state, row.build_number))
    return _requeue(connection, chosen_rows, {target: chosen}, reason=reason, urgent=False, now=now)
