"""The event journal and the follower's position.

Every changelog row is stored (keyed by serial) in the same transaction that applies it and
moves the position, so a process killed at any moment either did all three or none.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from wheelfarm.store.schema import events, state
from wheelfarm.upstream.events import ChangelogEvent, EventProblem

__all__ = ["POSITION", "get_state", "journal_events", "position", "set_state", "timestamp_at"]

POSITION = "changelog_serial"


def get_state(connection: Connection, name: str) -> str | None:
    return connection.execute(select(state.c.value).where(state.c.name == name)).scalar()


def set_state(connection: Connection, name: str, value: str) -> None:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(state).values(name=name, value=value)
    connection.execute(
        statement.on_conflict_do_update(index_elements=["name"], set_={"value": value})
    )


def position(connection: Connection) -> int:
    """The last changelog serial applied (0 before the first)."""
    return int(get_state(connection, POSITION) or 0)


def journal_events(
    connection: Connection,
    parsed: Sequence[ChangelogEvent],
    problems: Sequence[EventProblem] = (),
) -> list[ChangelogEvent]:
    """Store rows not yet journalled; return the events that are new (the ones to apply).

    Rows we could not parse are journalled with their problem when they carry a serial, so that
    the position can move past them and an operator can see them.
    """
    serials = [event.serial for event in parsed] + [p.serial for p in problems if p.serial]
    if not serials:
        return []
    known = set(
        connection.execute(
            select(events.c.serial).where(events.c.serial.between(min(serials), max(serials)))
        ).scalars()
    )
    fresh: list[ChangelogEvent] = []
    for event in parsed:  # a hostile response may repeat a serial: the first one counts
        if event.serial not in known:
            known.add(event.serial)
            fresh.append(event)
    unparsed = []
    for problem in problems:
        if problem.serial and problem.serial not in known:
            known.add(problem.serial)
            unparsed.append(problem)
    rows = [
        {
            "serial": event.serial,
            "timestamp": event.timestamp,
            "name": event.name,
            "version": event.version,
            "action": event.action,
            "problem": None,
        }
        for event in fresh
    ]
    rows += [
        {
            "serial": problem.serial,
            "timestamp": None,
            "name": None,
            "version": None,
            "action": repr(problem.row)[:1000],
            "problem": "; ".join(problem.problems),
        }
        for problem in unparsed
    ]
    if rows:
        connection.execute(events.insert(), rows)
    return fresh


def timestamp_at(connection: Connection, serial: int) -> int | None:
    """The timestamp of the latest journalled event at or before ``serial``."""
    return connection.execute(
        select(events.c.timestamp)
        .where(events.c.serial <= serial, events.c.timestamp.is_not(None))
        .order_by(events.c.serial.desc())
        .limit(1)
    ).scalar()
