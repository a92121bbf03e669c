"""Read the queue and its outcomes for people and tools (``wheelfarm builds``, ``rebuild``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update

from wheelfarm.farm.jobs import JobState
from wheelfarm.names import NormalizedName
from wheelfarm.store.marks import mark_changed
from wheelfarm.store.schema import build_files, jobs

__all__ = ["BuildRow", "list_builds", "requeue_failed"]


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

    def as_json(self) -> dict[str, Any]:
        """The documented shape of ``wheelfarm builds --json`` (docs/cli.md): ``reason`` only
        for a failed or skipped job."""
        entry: dict[str, Any] = {
            "project": self.project,
            "version": self.version,
            "target": self.target,
            "status": self.status,
            "files": list(self.files),
        }
        if self.status in _WITH_REASON:
            entry["reason"] = self.reason
        return entry


_WITH_REASON = (JobState.FAILED.value, JobState.SKIPPED.value)


def list_builds(
    connection: Connection, *, project: NormalizedName | None = None, failed_only: bool = False
) -> list[BuildRow]:
    """One row per (release, target): status, our wheel files, and the reason when there is one."""
    query = select(jobs).order_by(jobs.c.project, jobs.c.version, jobs.c.target)
    if project is not None:
        query = query.where(jobs.c.project == project)
    if failed_only:
        query = query.where(jobs.c.state == JobState.FAILED.value)
    files_query = select(
        build_files.c.project, build_files.c.version, build_files.c.target, build_files.c.filename
    )
    if project is not None:
        files_query = files_query.where(build_files.c.project == project)
    files: dict[tuple[str, str, str], list[str]] = {}
    for row in connection.execute(files_query.order_by(build_files.c.filename)):
        files.setdefault((row.project, row.version, row.target), []).append(row.filename)
    return [
        BuildRow(
            project=row.project,
            version=row.version,
            target=row.target,
            status=row.state,
            files=tuple(files.get((row.project, row.version, row.target), [])),
            reason=row.reason if row.state in _WITH_REASON else None,
        )
        for row in connection.execute(query)
    ]


def requeue_failed(
    connection: Connection,
    project: NormalizedName,
    version: str | None,
    target: str | None,
    *,
    now: float,
) -> int:
    """Put failed jobs back in the queue (urgent: an operator is waiting); returns how many."""
    statement = update(jobs).where(jobs.c.project == project, jobs.c.state == JobState.FAILED.value)
    if version is not None:
        statement = statement.where(jobs.c.version == version)
    if target is not None:
        statement = statement.where(jobs.c.target == target)
    result = connection.execute(
        statement.values(state=JobState.PENDING.value, urgent=True, reason=None, updated_at=now)
    )
    mark_changed(connection, [project] if result.rowcount else [])
    return result.rowcount
