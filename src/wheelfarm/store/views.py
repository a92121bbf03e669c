"""What exists now, derived from the registers: one project's view, the counts, the names.

A fact is visible when the latest event asserting it is later than every removal that covers it:
its own, its release's and its project's. A removal therefore hides only what was asserted before
it, and a project or release asserted again after its removal starts with no trace of the old one.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, RowMapping, and_, case, func, not_, or_, select
from sqlalchemy.sql.elements import ColumnElement

from wheelfarm.names import NormalizedName, sort_versions
from wheelfarm.store.schema import files, projects, releases

__all__ = [
    "FileView",
    "ProjectStatus",
    "ProjectView",
    "ReleaseView",
    "StoreCounts",
    "count_store",
    "live_project_names",
    "read_project",
    "spelled_name",
    "status_marker",
]

Row = RowMapping


class ProjectStatus(enum.Enum):
    LIVE = "live"
    DELETED = "deleted"
    QUARANTINED = "quarantined"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class FileView:
    filename: str
    version: str
    python_version: str | None
    sha256: str | None
    size: int | None
    upload_time: str | None
    requires_python: str | None


@dataclass(frozen=True)
class ReleaseView:
    version: str
    prerelease: bool
    yanked: bool
    yanked_reason: str | None
    files: tuple[FileView, ...]

    @property
    def requires_python(self) -> str | None:
        """The release's Requires-Python: the commonest among its files (usually all agree)."""
        values = Counter(f.requires_python for f in self.files if f.requires_python)
        return values.most_common(1)[0][0] if values else None


@dataclass(frozen=True)
class ProjectView:
    name: NormalizedName
    display_name: str
    summary: str | None
    status: ProjectStatus
    last_serial: int = 0
    synced_serial: int = 0
    touched_key: int = 0
    releases: dict[str, ReleaseView] = field(default_factory=dict)
    # PEP 792's marker as the upstream's page last stated it ("active" when it never did, or
    # did so before the project's latest removal), and its reason.
    status_marker: str = "active"
    status_reason: str | None = None
    # The keys of the registers only page reads and quarantine events set (see diff.changes_for).
    status_key: int = 0
    quarantine_key: int = 0


def _project_status(project: Row) -> ProjectStatus:
    if project["live_key"] <= project["removed_key"]:
        return ProjectStatus.DELETED
    if project["quarantined"] and project["quarantine_key"] > project["removed_key"]:
        return ProjectStatus.QUARANTINED
    return ProjectStatus.LIVE


def status_marker(project: RowMapping | Mapping[str, Any]) -> tuple[str, str | None]:
    """PEP 792's marker and reason: the page's, unless set before the latest removal."""
    if project["status_marker"] and project["status_key"] > project["removed_key"]:
        return str(project["status_marker"]), project["status_reason"]
    return "active", None


def _release_visible(release: Row, project: Row) -> bool:
    removed = max(release["removed_key"], project["removed_key"])
    quarantined = release["quarantined"] and release["quarantine_key"] > removed
    return release["live_key"] > removed and not quarantined


def _release_yanked(release: Row, project: Row) -> bool:
    removed = max(release["removed_key"], project["removed_key"])
    return bool(release["yanked"]) and release["yank_key"] > removed


def _file_visible(file: Row, release: Row, project: Row) -> bool:
    removed = max(file["removed_key"], release["removed_key"], project["removed_key"])
    return bool(file["live_key"] > removed)


def display_name(project: RowMapping | Mapping[str, Any]) -> str:
    """The spelling of the latest registration since the last removal, else of the latest event.

    A project re-registered after its deletion takes the new spelling; one revived by a stray
    release event with no registration since its deletion takes that event's spelling.
    """
    return spelled_name(
        project["name"],
        project["registered_name"],
        project["registered_key"],
        project["removed_key"],
        project["seen_name"],
    )


def spelled_name(
    name: str,
    registered_name: str | None,
    registered_key: int | None,
    removed_key: int | None,
    seen_name: str | None,
) -> str:
    """:func:`display_name` from its columns: rows read as named tuples need no dict made
    (``_asdict`` cost about a microsecond a project in a regeneration)."""
    if registered_name and (registered_key or 0) > (removed_key or 0):
        return str(registered_name)
    return str(seen_name or name)


def read_project(connection: Connection, name: NormalizedName) -> ProjectView:
    """Everything visible of one project (no releases unless it is live)."""
    project = connection.execute(select(projects).where(projects.c.name == name)).mappings().first()
    if project is None:
        return ProjectView(name, name, None, ProjectStatus.UNKNOWN)
    status = _project_status(project)
    marker, reason = status_marker(project)
    view = ProjectView(
        name=name,
        display_name=display_name(project),
        summary=project["summary"],
        status=status,
        last_serial=project["last_serial"],
        synced_serial=project["synced_serial"],
        touched_key=project["touched_key"],
        status_marker=marker,
        status_reason=reason,
        status_key=project["status_key"],
        quarantine_key=project["quarantine_key"],
    )
    if status is not ProjectStatus.LIVE:
        return view
    release_rows = {
        row["version"]: row
        for row in connection.execute(select(releases).where(releases.c.project == name)).mappings()
        if _release_visible(row, project)
    }
    files_by_version: dict[str, list[FileView]] = {version: [] for version in release_rows}
    file_rows = connection.execute(
        select(files).where(files.c.project == name).order_by(files.c.filename)
    ).mappings()
    for row in file_rows:
        release = release_rows.get(row["version"])
        if release is not None and _file_visible(row, release, project):
            files_by_version[row["version"]].append(
                FileView(
                    filename=row["filename"],
                    version=row["version"],
                    python_version=row["python_version"],
                    sha256=row["sha256"],
                    size=row["size"],
                    upload_time=row["upload_time"],
                    requires_python=row["requires_python"],
                )
            )
    for version in sort_versions(list(release_rows)):
        row = release_rows[version]
        yanked = _release_yanked(row, project)
        view.releases[version] = ReleaseView(
            version=version,
            prerelease=bool(row["prerelease"]),
            yanked=yanked,
            yanked_reason=row["yanked_reason"] if yanked else None,
            files=tuple(files_by_version[version]),
        )
    return view


def _biggest(*columns: ColumnElement[int]) -> ColumnElement[int]:
    """``max(a, b)`` in SQLite and ``greatest(a, b)`` in PostgreSQL, from one expression."""
    first, *rest = columns
    if not rest:
        return first
    other = _biggest(*rest)
    return case((first > other, first), else_=other)


def project_live_clause() -> ColumnElement[bool]:
    """SQL twin of the LIVE status of :func:`_project_status`."""
    p = projects.c
    return and_(
        p.live_key > p.removed_key,
        not_(and_(p.quarantined, p.quarantine_key > p.removed_key)),
    )


def release_live_clause() -> ColumnElement[bool]:
    """SQL twin of :func:`_release_visible`, joined with a live project."""
    r, p = releases.c, projects.c
    removed = _biggest(r.removed_key, p.removed_key)
    return and_(
        project_live_clause(),
        r.live_key > removed,
        or_(not_(r.quarantined), r.quarantine_key <= removed),
    )


def file_live_clause() -> ColumnElement[bool]:
    """SQL twin of :func:`_file_visible`, joined with a live release."""
    f, r, p = files.c, releases.c, projects.c
    removed = _biggest(f.removed_key, r.removed_key, p.removed_key)
    return and_(release_live_clause(), f.live_key > removed)


@dataclass(frozen=True)
class StoreCounts:
    projects: int
    releases: int
    files: int
    projects_deleted: int
    releases_deleted: int
    files_deleted: int
    projects_quarantined: int


def _count(connection: Connection, statement: Any) -> int:
    return int(connection.execute(statement).scalar_one())


def count_store(connection: Connection) -> StoreCounts:
    """Live and deleted counts; 'deleted' is every stored fact that is not visible now."""
    release_join = releases.join(projects, releases.c.project == projects.c.name)
    file_join = files.join(
        releases, and_(files.c.project == releases.c.project, files.c.version == releases.c.version)
    ).join(projects, files.c.project == projects.c.name)
    live_projects = _count(connection, select(func.count()).where(project_live_clause()))
    live_releases = _count(
        connection, select(func.count()).select_from(release_join).where(release_live_clause())
    )
    live_files = _count(
        connection, select(func.count()).select_from(file_join).where(file_live_clause())
    )
    p = projects.c
    quarantined = _count(
        connection,
        select(func.count()).where(
            p.live_key > p.removed_key, p.quarantined, p.quarantine_key > p.removed_key
        ),
    )
    all_projects = _count(connection, select(func.count()).select_from(projects))
    all_releases = _count(connection, select(func.count()).select_from(releases))
    all_files = _count(connection, select(func.count()).select_from(files))
    return StoreCounts(
        projects=live_projects,
        releases=live_releases,
        files=live_files,
        projects_deleted=all_projects - live_projects - quarantined,
        releases_deleted=all_releases - live_releases,
        files_deleted=all_files - live_files,
        projects_quarantined=quarantined,
    )


def live_project_names(connection: Connection) -> list[NormalizedName]:
    """Every live project's key, sorted."""
    rows = connection.execute(
        select(projects.c.name).where(project_live_clause()).order_by(projects.c.name)
    )
    return [NormalizedName(name) for name in rows.scalars()]
