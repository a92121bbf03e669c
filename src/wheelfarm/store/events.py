"""Changelog events as the truth stores them: typed events and their order key.

The changelog is a list of ``(name, version, timestamp, action, serial)`` rows. Serials increase
but the first years of timestamps do not: a release can be timestamped before its project's
``create`` and a ``remove`` before the ``create`` it follows. So we never rely on arrival order.
Every event gets an *order key* that sorts by (timestamp, serial, phase) and the store keeps, for
each fact, the key of the latest event that asserted or retracted it. Which event is "latest" is
then a property of the set of events, not of the order they arrived in.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from wheelfarm.names import NormalizedName, canonical

__all__ = [
    "MAX_SERIAL",
    "MAX_TIMESTAMP",
    "Action",
    "ChangelogEvent",
    "EventProblem",
    "Phase",
    "order_key",
]

MAX_SERIAL = 2**30 - 1
MAX_TIMESTAMP = 2**32 - 1


class Phase(enum.IntEnum):
    """Breaks ties between a changelog event and a page read at the same serial.

    A project page read at serial S shows the state *after* event S, so it wins the tie.
    """

    EVENT = 0
    STATE = 1


def order_key(timestamp: int, serial: int, phase: Phase = Phase.EVENT) -> int:
    """One integer that sorts like ``(timestamp, serial, phase)``; fits a signed 64-bit column.

    32 bits of timestamp (to 2106), 30 of serial (PyPI is near 2**25), 1 of phase.
    """
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError(f"timestamp {timestamp} is outside 0..{MAX_TIMESTAMP}")
    if not 0 <= serial <= MAX_SERIAL:
        raise ValueError(f"serial {serial} is outside 0..{MAX_SERIAL}")
    return (timestamp << 31) | (serial << 1) | int(phase)


class Action(enum.Enum):
    """What an event does to the state. ``METADATA`` events are journalled and change nothing."""

    CREATE = "create"
    NEW_RELEASE = "new release"
    ADD_FILE = "add file"
    REMOVE_FILE = "remove file"
    REMOVE_RELEASE = "remove release"
    REMOVE_PROJECT = "remove project"
    YANK = "yank release"
    UNYANK = "unyank release"
    QUARANTINE_PROJECT = "project quarantined"
    CLEAR_PROJECT_QUARANTINE = "project quarantine cleared"
    QUARANTINE_RELEASE = "release quarantined"
    CLEAR_RELEASE_QUARANTINE = "release quarantine cleared"
    METADATA = "metadata"


@dataclass(frozen=True, slots=True)
class ChangelogEvent:
    """One changelog row, validated. ``action`` keeps the upstream's text for the journal."""

    serial: int
    timestamp: int
    name: str
    version: str | None
    action: str
    kind: Action
    filename: str | None = None
    python_version: str | None = None

    @property
    def project(self) -> NormalizedName:
        """The project's key."""
        return canonical(self.name)

    @property
    def key(self) -> int:
        """The order key: what decides which of two events happened last.

        Computed without :func:`order_key`'s range checks: the parser
        (:func:`wheelfarm.upstream.events.parse_row`) made them.
        """
        return (self.timestamp << 31) | (self.serial << 1)


class EventProblem(ValueError):
    """A changelog row we cannot use; it is logged (and journalled when it has a serial).

    A ValueError, not a WheelfarmError: it is a verdict on one row, collected with the others of
    its batch, and never reaches the user as a failure.
    """

    def __init__(self, row: object, problems: list[str], serial: int | None = None) -> None:
        super().__init__(f"changelog row {row!r}: {'; '.join(problems)}")
        self.row = row
        self.problems = problems
        self.serial = serial
