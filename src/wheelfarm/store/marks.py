"""Which projects must be published again, and our serial for each project.

Every write that changes what a project's pages show calls :func:`mark_changed` in the same
transaction, so a change and its mark commit (or roll back) together. A mark gives the projects
the next serial from one counter (the highest serial so far + 1, or at least their own + 1) and
sets their ``dirty`` flag. A writer reads dirty projects with their serials, writes them, and
then clears only the flags whose serial did not move meanwhile: a change that lands while its
project is being written is written again by the next round, never lost. A build log rewritten
since it was published (``builds.log_stale``, set by a re-triage with its project's mark) is
cleared the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import Connection, case, exists, false, func, literal_column, select, update

from wheelfarm.store.bulk import insert_rows
from wheelfarm.store.schema import builds, index_projects, projects

__all__ = [
    "WrittenMark",
    "dirty_projects",
    "mark_all_changed",
    "mark_changed",
    "mark_written",
    "site_serial",
]

_TABLE = index_projects


def _next_serial(connection: Connection) -> int:
    return int(connection.execute(select(func.coalesce(func.max(_TABLE.c.serial), 0))).scalar_one())


def _on_mark(statement: Any) -> Any:
    """Existing rows: a serial above both the counter and their own, and dirty again."""
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=["name"],
        set_={
            "serial": case(
                (excluded.serial > _TABLE.c.serial, excluded.serial),
                else_=_TABLE.c.serial + literal_column("1"),
            ),
            "dirty": excluded.dirty,
        },
    )


def mark_changed(connection: Connection, names: Iterable[str]) -> None:
    """Note that these projects' published state changed: they get a new serial and are dirty."""
    unique = sorted(set(names))  # one lock order on PostgreSQL
    if not unique:
        return
    serial = _next_serial(connection) + 1
    insert_rows(connection, _TABLE, [(name, serial, True, None) for name in unique], _on_mark)


def mark_all_changed(connection: Connection) -> None:
    """Every project is to be written again (a target was added or removed: new columns)."""
    known = set(connection.execute(select(_TABLE.c.name)).scalars())
    serial = _next_serial(connection) + 1
    connection.execute(update(_TABLE).values(serial=serial, dirty=True))
    missing = [
        (name, serial, True, None)
        for name in connection.execute(select(projects.c.name)).scalars()
        if name not in known
    ]
    insert_rows(connection, _TABLE, missing, _on_mark)


def dirty_projects(connection: Connection, limit: int | None = None) -> dict[str, int]:
    """Projects waiting to be written, with the serial of their latest change."""
    query = select(_TABLE.c.name, _TABLE.c.serial).where(_TABLE.c.dirty)
    if limit is not None:
        query = query.order_by(_TABLE.c.serial).limit(limit)
    return {name: serial for name, serial in connection.execute(query)}


def _on_written(statement: Any) -> Any:
    """Keep the dirty flag when the serial moved since the writer read it."""
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=["name"],
        set_={
            "listed": excluded.listed,
            "dirty": case((_TABLE.c.serial == excluded.serial, false()), else_=_TABLE.c.dirty),
        },
    )


class WrittenMark(NamedTuple):
    """A project as a writer wrote it: what :func:`mark_written` records (a writer's worker
    processes send these back to the process that records them)."""

    name: str
    serial: int  # the serial it was read at: its dirty flag is cleared only if it did not move
    listed: str | None  # what the site lists for it now
    stale_logs: tuple[int, ...] = ()  # build logs it wrote again because they were rewritten


def mark_written(connection: Connection, written: Iterable[WrittenMark]) -> None:
    """Record projects as written; a flag is kept where the serial moved since it was read."""
    marks = list(written)
    for mark in marks:
        if mark.stale_logs:  # rare (after a re-triage): one statement per project
            _logs_written(connection, mark)
    rows = [(mark.name, mark.serial, False, mark.listed) for mark in marks]
    insert_rows(connection, _TABLE, rows, _on_written)


def _logs_written(connection: Connection, mark: WrittenMark) -> None:
    """Clear the logs' stale flags, unless the project changed since it was read (a re-triage
    that rewrote a log again marked it changed in the same transaction)."""
    unchanged = exists().where(_TABLE.c.name == mark.name, _TABLE.c.serial == mark.serial)
    connection.execute(
        update(builds)
        .where(builds.c.id.in_(mark.stale_logs), builds.c.project == mark.name, unchanged)
        .values(log_stale=False)
    )


def site_serial(connection: Connection) -> int:
    """The index's serial: the highest project serial."""
    return _next_serial(connection)
