"""Parse the upstream's changelog rows into :class:`~wheelfarm.store.events.ChangelogEvent`.

Rows arrive as ``(name, version, timestamp, action, serial)``; every problem with a row is
reported at once (:class:`~wheelfarm.store.events.EventProblem`). Why events carry an order key
rather than trusting arrival order is told in :mod:`wheelfarm.store.events`.
"""

from __future__ import annotations

import re
from typing import cast

from wheelfarm.names import MAX_FILENAME, MAX_NAME, text_problem
from wheelfarm.store.events import MAX_SERIAL, MAX_TIMESTAMP, Action, ChangelogEvent, EventProblem

__all__ = ["parse_row"]

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
