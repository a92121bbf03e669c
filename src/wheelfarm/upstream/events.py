"""Changelog events: the upstream's rows parsed into typed events with an order key.

The changelog is a list of ``(name, version, timestamp, action, serial)`` rows. Serials increase
but the first years of timestamps do not: a release can be timestamped before its project's
``create`` and a ``remove`` before the ``create`` it follows. So we never rely on arrival order.
Every event gets an *order key* that sorts by (timestamp, serial, phase) and the store keeps, for
each fact, the key of the latest event that asserted or retracted it. Which event is "latest" is
then a property of the set of events, not of the order they arrived in.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import cast

from wheelfarm.names import MAX_FILENAME, MAX_NAME, NormalizedName, canonical, text_problem

__all__ = [
    "MAX_SERIAL",
    "MAX_TIMESTAMP",
    "Action",
    "ChangelogEvent",
    "EventProblem",
    "Phase",
    "order_key",
    "parse_row",
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


_EXACT: dict[str, Action] = {
    "create": Action.CREATE,
    "new release": Action.NEW_RELEASE,
    "remove release": Action.REMOVE_RELEASE,
    "remove project": Action.REMOVE_PROJECT,
    "yank release": Action.YANK,
    "unyank release": Action.UNYANK,
    "project quarantined": Action.QUARANTINE_PROJECT,
    "project quarantine cleared": Action.CLEAR_PROJECT_QUARANTINE,
    "release quarantined": Action.QUARANTINE_RELEASE,
    "release quarantine cleared": Action.CLEAR_RELEASE_QUARANTINE,
}
_ADD_FILE = re.compile(r"add (?P<pyversion>\S+) file (?P<filename>\S.*)")
_REMOVE_FILE = re.compile(r"remove file (?P<filename>\S.*)")
_NEEDS_VERSION = {
    Action.NEW_RELEASE,
    Action.ADD_FILE,
    Action.REMOVE_FILE,
    Action.REMOVE_RELEASE,
    Action.YANK,
    Action.UNYANK,
    Action.QUARANTINE_RELEASE,
    Action.CLEAR_RELEASE_QUARANTINE,
}


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

        Computed without :func:`order_key`'s range checks: :func:`parse_row` made them.
        """
        return (self.timestamp << 31) | (self.serial << 1)


class EventProblem(ValueError):
    """A changelog row we cannot use; it is logged (and journalled when it has a serial)."""

    def __init__(self, row: object, problems: list[str], serial: int | None = None) -> None:
        super().__init__(f"changelog row {row!r}: {'; '.join(problems)}")
        self.row = row
        self.problems = problems
        self.serial = serial


def _classify(action: str, version: str | None) -> tuple[Action, str | None, str | None]:
    """Map the upstream's action text to an :class:`Action`, a file name and a Python version.

    Only the exact deleting forms delete: ``remove Owner alice`` is a role change, not a removal.
    """
    if action in _EXACT:
        return _EXACT[action], None, None
    if action == "remove":  # legacy: a bare remove with a version removed that release
        return (Action.REMOVE_PROJECT if version is None else Action.REMOVE_RELEASE), None, None
    if match := _ADD_FILE.fullmatch(action):
        return Action.ADD_FILE, match["filename"], match["pyversion"]
    if match := _REMOVE_FILE.fullmatch(action):
        return Action.REMOVE_FILE, match["filename"], None
    return Action.METADATA, None, None


def _whole(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_row(row: object) -> ChangelogEvent:
    """Validate one raw row, reporting every problem at once in an :class:`EventProblem`."""
    if not isinstance(row, list | tuple) or len(row) != 5:
        raise EventProblem(row, ["expected 5 fields (name, version, timestamp, action, serial)"])
    name, version, timestamp, action, serial = row
    problems: list[str] = []
    serial_value = _whole(serial)
    if serial_value is None or not 0 < serial_value <= MAX_SERIAL:
        problems.append(f"serial {serial!r} is not a whole number in 1..{MAX_SERIAL}")
        serial_value = None
    timestamp_value = _whole(timestamp)
    if timestamp_value is None or not 0 <= timestamp_value <= MAX_TIMESTAMP:
        problems.append(f"timestamp {timestamp!r} is not a unix time")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"name {name!r} is not a non-empty string")
    if version is not None and (not isinstance(version, str) or not version.strip()):
        problems.append(f"version {version!r} is neither null nor a non-empty string")
    if not isinstance(action, str):
        problems.append(f"action {action!r} is not a string")
    elif version is None and _classify(action.strip(), None)[0] in _NEEDS_VERSION:
        problems.append(f"action {action!r} needs a version")
    for what, value, limit in (
        ("name", name, MAX_NAME),
        ("version", version, MAX_NAME),
        ("action", action, MAX_FILENAME + 64),
    ):
        # Empty fields were reported above; here: what the store cannot hold.
        problem = text_problem(what, value, limit) if isinstance(value, str) else None
        if problem and value.strip():
            problems.append(problem)
    if problems:
        raise EventProblem(row, problems, serial_value)
    # The checks above guarantee these types; cast only tells the type checker.
    name, action = cast(str, name), cast(str, action)
    version_text = version.strip() if isinstance(version, str) else None
    kind, filename, python_version = _classify(action.strip(), version_text)
    return ChangelogEvent(
        serial=cast(int, serial_value),
        timestamp=cast(int, timestamp_value),
        name=name.strip(),
        version=version_text,
        action=action,
        kind=kind,
        filename=filename,
        python_version=python_version,
    )
