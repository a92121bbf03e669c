"""Read the queue and its outcomes for people and tools (``wheelfarm builds``, ``rebuild``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, ScalarSelect, func, or_, select

from wheelfarm.farm.jobs import JobState
from wheelfarm.names import NormalizedName, version_order
from wheelfarm.store.schema import build_files, builds, jobs

__all__ = [
    "BuildRow",
    "QueueCounts",
    "builds_under_way",
    "failure_counts",
    "list_builds",
    "queue_counts",
]


@dataclass(frozen=True)
class BuildRow:
    """One (release, target): its job's state, our wheel files, and the reason when it failed
    or was skipped (``None`` otherwise)."""

    project: str
    version: str
    target: str
    status: str
    files: tuple[str, ...]
    reason: str | None = None
    category: str | None = None  # a failed job's, from its latest build's log (farm/triage)

    def as_json(self) -> dict[str, Any]:
        """The documented shape of ``wheelfarm builds --json`` (docs/cli.md): ``reason`` only
        for a failed or skipped job, ``category`` only for a failed one."""
        entry: dict[str, Any] = {
            "project": self.project,
            "version": self.version,
            "target": self.target,
            "status": self.status,
            "files": list(self.files),
        }
        if self.status in _WITH_REASON:
            entry["reason"] = self.reason
        if self.status == JobState.FAILED.value:
            entry["category"] = self.category or "unknown"
        return entry


_WITH_REASON = (JobState.FAILED.value, JobState.SKIPPED.value)


def _latest_category() -> ScalarSelect[Any]:
    """A job's latest build's category, as a scalar subquery over ``jobs``."""
    return (
        select(builds.c.category)
        .where(
            builds.c.project == jobs.c.project,
            builds.c.version == jobs.c.version,
            builds.c.target == jobs.c.target,
        )
        .order_by(builds.c.id.desc())
        .limit(1)
        .correlate(jobs)
        .scalar_subquery()
    )


def list_builds(
    connection: Connection,
    *,
    project: NormalizedName | None = None,
    failed_only: bool = False,
    category: str | None = None,
) -> list[BuildRow]:
    """One row per (release, target): status, our wheel files, and the reason when there is one.

    Rows come by project, then version in PEP 440 order (the database would sort ``0.11``
    before ``0.9``; invalid versions come last), then target. ``category``: only failed jobs
    whose latest build has it ("unknown" takes those with none).
    """
    latest_category = _latest_category().label("category")
    query = select(jobs, latest_category)
    if project is not None:
        query = query.where(jobs.c.project == project)
    if failed_only or category is not None:
        query = query.where(jobs.c.state == JobState.FAILED.value)
    if category is not None:
        matched = func.coalesce(_latest_category(), "unknown") == category
        query = query.where(matched)
    files_query = select(
        build_files.c.project, build_files.c.version, build_files.c.target, build_files.c.filename
    )
    if project is not None:
        files_query = files_query.where(build_files.c.project == project)
    files: dict[tuple[str, str, str], list[str]] = {}
    for row in connection.execute(files_query.order_by(build_files.c.filename)):
        files.setdefault((row.project, row.version, row.target), []).append(row.filename)
    found = [
        BuildRow(
            project=row.project,
            version=row.version,
            target=row.target,
            status=row.state,
            files=tuple(files.get((row.project, row.version, row.target), [])),
            reason=row.reason if row.state in _WITH_REASON else None,
            category=row.category if row.state == JobState.FAILED.value else None,
        )
        for row in connection.execute(query)
    ]
    found.sort(key=lambda row: (row.project, version_order(row.version), row.target))
    return found


def failure_counts(connection: Connection) -> dict[str, int]:
    """How many jobs failed, by their latest build's category ("unknown" for none)."""
    category = func.coalesce(_latest_category(), "unknown").label("category")
    query = (
        select(category, func.count())
        .select_from(jobs)
        .where(jobs.c.state == JobState.FAILED.value)
        .group_by(category)
    )
    return {str(name): int(count) for name, count in connection.execute(query)}


@dataclass(frozen=True)
class QueueCounts:
    """How many jobs are in each state: what ``up``'s progress line is made of."""

    pending: int = 0
    building: int = 0
    built: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def queued(self) -> int:
        """Jobs still to finish: waiting or being built."""
        return self.pending + self.building

    @property
    def finished(self) -> int:
        """Jobs a build has finished, well or not (skips never needed one)."""
        return self.built + self.failed


def queue_counts(connection: Connection) -> QueueCounts:
    """The jobs in each state, in one query."""
    rows = connection.execute(select(jobs.c.state, func.count()).group_by(jobs.c.state))
    by_state = {state: count for state, count in rows}
    return QueueCounts(**{s.value: by_state.get(s.value, 0) for s in JobState})


def builds_under_way(connection: Connection, builder: str) -> int:
    """Jobs being built by the builder named ``builder`` or by one named ``<builder>-...``
    (``up``'s local builder and its emulated ones)."""
    query = (
        select(func.count())
        .select_from(jobs)
        .where(
            jobs.c.state == JobState.BUILDING.value,
            or_(jobs.c.builder == builder, jobs.c.builder.startswith(f"{builder}-")),
        )
    )
    return connection.execute(query).scalar_one()
