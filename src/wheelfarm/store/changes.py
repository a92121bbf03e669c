"""Register updates: gather them from events or page reads, then write them in one go.

Every column ending in ``_key`` is a register that only grows (``max``); values that travel with
a key (a yank and its reason, a registration and its spelling) are taken from whichever update
carries the larger key. Writing is an upsert per row, so applying the same changes twice, or in
any order, leaves the same rows.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

from sqlalchemy import Connection, Table, case, func
from sqlalchemy.sql.elements import ColumnElement

from wheelfarm.names import NormalizedName, is_prerelease
from wheelfarm.store.bulk import OnConflict, insert_rows
from wheelfarm.store.events import Action, ChangelogEvent
from wheelfarm.store.marks import mark_changed
from wheelfarm.store.schema import files, projects, releases

__all__ = [
    "Changes",
    "FileChange",
    "ProjectChange",
    "ReleaseChange",
    "TableRows",
    "table_rows",
    "write_changes",
    "write_rows",
]


@dataclass(slots=True)
class ProjectChange:
    """Updates to one project's registers; zero keys never win."""

    live_key: int = 0
    removed_key: int = 0
    registered_key: int = 0
    registered_name: str | None = None
    seen_key: int = 0
    seen_name: str | None = None
    quarantine_key: int = 0
    quarantined: bool = False
    summary: str | None = None
    last_serial: int = 0
    synced_serial: int = 0
    touched_key: int = 0
    status_key: int = 0
    status_marker: str | None = None
    status_reason: str | None = None

    def assert_live(self, key: int, spelling: str) -> None:
        """Something of this project exists as of ``key`` (under that spelling of its name)."""
        self.live_key = max(self.live_key, key)
        if key > self.seen_key:
            self.seen_key, self.seen_name = key, spelling

    def register(self, key: int, spelling: str) -> None:
        """A (re-)registration: the display name becomes its spelling if it is the latest."""
        self.assert_live(key, spelling)
        if key > self.registered_key:
            self.registered_key, self.registered_name = key, spelling

    def set_quarantine(self, key: int, quarantined: bool) -> None:
        if key > self.quarantine_key:
            self.quarantine_key, self.quarantined = key, quarantined

    def set_status(self, key: int, marker: str, reason: str | None) -> None:
        """PEP 792's status marker (and its reason) as a page read at ``key`` states it."""
        if key > self.status_key:
            self.status_key, self.status_marker, self.status_reason = key, marker, reason


@dataclass(slots=True)
class ReleaseChange:
    """Updates to one release's registers."""

    live_key: int = 0
    removed_key: int = 0
    yank_key: int = 0
    yanked: bool = False
    yanked_reason: str | None = None
    quarantine_key: int = 0
    quarantined: bool = False

    def set_yank(self, key: int, yanked: bool, reason: str | None) -> None:
        if key > self.yank_key:
            self.yank_key, self.yanked, self.yanked_reason = key, yanked, reason

    def set_quarantine(self, key: int, quarantined: bool) -> None:
        if key > self.quarantine_key:
            self.quarantine_key, self.quarantined = key, quarantined


@dataclass(slots=True)
class FileChange:
    """Updates to one file: its registers, and details only a page read knows."""

    version: str
    live_key: int = 0
    removed_key: int = 0
    python_version: str | None = None
    sha256: str | None = None
    size: int | None = None
    upload_time: str | None = None
    requires_python: str | None = None


@dataclass
class Changes:
    """A batch of register updates keyed by project, (project, version), (project, filename)."""

    projects: dict[NormalizedName, ProjectChange] = field(default_factory=dict)
    releases: dict[tuple[NormalizedName, str], ReleaseChange] = field(default_factory=dict)
    files: dict[tuple[NormalizedName, str], FileChange] = field(default_factory=dict)

    def project(self, name: NormalizedName) -> ProjectChange:
        return self.projects.setdefault(name, ProjectChange())

    def release(self, project: NormalizedName, version: str) -> ReleaseChange:
        self.project(project)  # the row must exist before its release (foreign key)
        return self.releases.setdefault((project, version), ReleaseChange())

    def file(self, project: NormalizedName, version: str, filename: str) -> FileChange:
        file = self.files.get((project, filename))
        if file is None:
            self.release(project, version)
            file = self.files[(project, filename)] = FileChange(version=version)
        return file

    def __bool__(self) -> bool:
        return bool(self.projects or self.releases or self.files)

    def add_events(self, events: Iterable[ChangelogEvent]) -> None:
        for event in events:
            self.add_event(event)

    def add_event(self, event: ChangelogEvent) -> None:
        """Fold one changelog event into the batch. Role and metadata events change nothing."""
        kind = event.kind
        if kind is Action.METADATA:
            return
        key, name = event.key, event.project
        project = self.projects.get(name)
        if project is None:
            project = self.projects[name] = ProjectChange()
        project.last_serial = max(project.last_serial, event.serial)
        project.touched_key = max(project.touched_key, key)
        if kind is Action.CREATE:
            project.register(key, event.name)
        elif kind is Action.REMOVE_PROJECT:
            project.removed_key = max(project.removed_key, key)
        elif kind is Action.QUARANTINE_PROJECT or kind is Action.CLEAR_PROJECT_QUARANTINE:
            project.set_quarantine(key, kind is Action.QUARANTINE_PROJECT)
        else:
            self._add_release_event(event, project)

    def _add_release_event(self, event: ChangelogEvent, project: ProjectChange) -> None:
        kind, key, name, version = event.kind, event.key, event.project, event.version or ""
        release = self.releases.get((name, version))
        if release is None:
            release = self.releases[(name, version)] = ReleaseChange()
        if kind is Action.ADD_FILE or kind is Action.NEW_RELEASE:
            # Early history has releases and files before their project's create: they imply it.
            project.assert_live(key, event.name)
            release.live_key = max(release.live_key, key)
            if kind is Action.ADD_FILE and event.filename:
                file = self.file(name, version, event.filename)
                file.live_key = max(file.live_key, key)
                file.python_version = event.python_version
        elif kind is Action.REMOVE_FILE and event.filename:
            file = self.file(name, version, event.filename)
            file.removed_key = max(file.removed_key, key)
        elif kind is Action.REMOVE_RELEASE:
            release.removed_key = max(release.removed_key, key)
        elif kind is Action.YANK or kind is Action.UNYANK:
            release.set_yank(key, kind is Action.YANK, None)
        elif kind is Action.QUARANTINE_RELEASE or kind is Action.CLEAR_RELEASE_QUARANTINE:
            release.set_quarantine(key, kind is Action.QUARANTINE_RELEASE)


def _greatest(table: Table, excluded: Any, column: str) -> ColumnElement[Any]:
    return case((excluded[column] > table.c[column], excluded[column]), else_=table.c[column])


def _latest(table: Table, excluded: Any, key: str, value: str) -> ColumnElement[Any]:
    return case((excluded[key] > table.c[key], excluded[value]), else_=table.c[value])


def _kept(table: Table, excluded: Any, column: str) -> ColumnElement[Any]:
    return func.coalesce(excluded[column], table.c[column])


def _merge_rule(table: Table, excluded: Any, name: str) -> ColumnElement[Any]:
    """How an existing row takes a new value: keys grow, keyed values follow their key."""
    if name.endswith(("_key", "_serial")):
        return _greatest(table, excluded, name)
    if name in ("registered_name", "seen_name"):
        return _latest(table, excluded, name.replace("_name", "_key"), name)
    if name in ("yanked", "yanked_reason"):
        return _latest(table, excluded, "yank_key", name)
    if name == "quarantined":
        return _latest(table, excluded, "quarantine_key", name)
    if name in ("status_marker", "status_reason"):
        return _latest(table, excluded, "status_key", name)
    return _kept(table, excluded, name)


def _upsert(connection: Connection, table: Table, rows: list[tuple[Any, ...]]) -> None:
    """INSERT ... ON CONFLICT DO UPDATE for rows given in the table's column order."""
    insert_rows(connection, table, rows, _merge_clause(table))


@functools.cache
def _merge_clause(table: Table) -> OnConflict:
    """The ON CONFLICT clause of ``table``'s upsert: one function per table, so that
    :func:`insert_rows` compiles the statement once, not at every project reconciled."""
    primary_key = [column.name for column in table.primary_key.columns]

    def on_conflict(statement: Any) -> Any:
        merge = {
            column.name: _merge_rule(table, statement.excluded, column.name)
            for column in table.c
            if not column.primary_key and column.name not in ("version", "prerelease")
        }
        return statement.on_conflict_do_update(index_elements=primary_key, set_=merge)

    return on_conflict


class TableRows(NamedTuple):
    """A batch of register updates as rows of each table, in the table's column order.

    Rows stay plain tuples: they cross from the reader process to the writer, and tuples
    unpickle about 4x faster than named tuples (50,000 rows: 0.024 s against 0.096 s).
    """

    projects: list[tuple[Any, ...]]
    releases: list[tuple[Any, ...]]
    files: list[tuple[Any, ...]]


def table_rows(changes: Changes) -> TableRows:
    """The batch as plain tuples in each table's column order: cheap to pickle and to insert.

    The change classes list their fields in the tables' column order (a test holds them to it).
    """
    project_fields = [f.name for f in fields(ProjectChange)]
    release_fields = [f.name for f in fields(ReleaseChange)]
    file_fields = [f.name for f in fields(FileChange)]
    pick_project = operator.attrgetter(*project_fields)
    pick_release = operator.attrgetter(*release_fields)
    pick_file = operator.attrgetter(*file_fields)
    return TableRows(
        projects=[(name, *pick_project(c)) for name, c in changes.projects.items()],
        releases=[
            (project, version, *pick_release(c), is_prerelease(version))
            for (project, version), c in changes.releases.items()
        ],
        files=[
            (project, filename, *pick_file(c)) for (project, filename), c in changes.files.items()
        ],
    )


def write_rows(connection: Connection, rows: TableRows) -> None:
    """Write a batch: projects first, then releases, then files (the foreign keys' order)."""
    _upsert(connection, projects, rows.projects)
    _upsert(connection, releases, rows.releases)
    _upsert(connection, files, rows.files)
    mark_changed(connection, [row[0] for row in rows.projects])  # to be published


def write_changes(connection: Connection, changes: Changes) -> None:
    """Write a batch of register updates."""
    write_rows(connection, table_rows(changes))
