"""Read the queue and its outcomes for people and tools (``wheelfarm builds``, ``rebuild``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select, update

from wheelfarm.farm.jobs import JobState
from wheelfarm.names import NormalizedName
from wheelfarm.store.marks import mark_changed
from wheelfarm.store.schema import build_files, jobs

__all__ = ["list_builds", "requeue_failed"]


def list_builds(
    connection: Connection, *, project: NormalizedName | None = None, failed_only: bool = False
) -> list[dict[str, Any]]:
    """One entry per (release, target): status, our wheel files, and the reason when there is one.

    The documented shape of ``wheelfarm builds --json`` (docs/cli.md).
    """
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
    entries = []
    for row in connection.execute(query):
        entry: dict[str, Any] = {
            "project": row.project,
            "version": row.version,
            "target": row.target,
            "status": row.state,
            "files": files.get((row.project, row.version, row.target), []),
        }
        if row.state in (JobState.FAILED.value, JobState.SKIPPED.value):
            entry["reason"] = row.reason
        entries.append(entry)
    return entries


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
