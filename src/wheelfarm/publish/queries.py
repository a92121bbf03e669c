"""The store reads behind the published values: one function per query, each returning typed rows.

Kept apart from the assembly (:mod:`wheelfarm.publish.loader`) so that each query's columns and
its row's fields are side by side, and the assembly reads fields by name, not by position.

Every row is a ``NamedTuple`` made from the driver's plain tuple: a full regeneration reads about
fifty rows per project, so the statements go through SQLAlchemy as usual (its compiled cache, its
parameters) but the rows are taken from the driver's cursor, round SQLAlchemy's Row objects and
per-column processors, which saves about a microsecond per row. No column read here needs a
processor: integers, floats, text, and booleans (``bool()``-ed where it matters).

Reads that load projects take an :data:`Among`, the condition that restricts a project-name
column to the names being loaded (a range of names or a list of them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import ColumnElement, Connection, Select, and_, case, func, not_, or_, select

from wheelfarm.farm.dependencies import FileDependencies, project_wheel_dependencies
from wheelfarm.farm.jobs import JobState
from wheelfarm.store.schema import (
    build_files,
    builds,
    files,
    index_projects,
    jobs,
    projects,
    releases,
    skips,
    targets,
)
from wheelfarm.store.views import file_live_clause, project_live_clause, release_live_clause

__all__ = [
    "CHUNK",
    "Among",
    "BuildRow",
    "HeadRow",
    "IndexRow",
    "JobRow",
    "ListingRow",
    "PublishedCounts",
    "ReleaseRow",
    "SkipRow",
    "UnlistedRow",
    "UpstreamFileRow",
    "WheelRow",
    "chunked",
    "count_built",
    "count_published",
    "read_builds",
    "read_heads",
    "read_index_rows",
    "read_jobs",
    "read_listing",
    "read_releases",
    "read_site_serial",
    "read_skips",
    "read_unlisted",
    "read_upstream_files",
    "read_wheel_dependencies",
    "read_wheels",
    "target_distros_of",
    "target_names_of",
]

T = TypeVar("T")
R = TypeVar("R", bound=tuple[Any, ...])

CHUNK = 1_000  # names per round of queries: big enough to amortise them, small for IN lists

Among = Callable[[ColumnElement[str]], ColumnElement[bool]]
"""Restricts a project-name column to the names being loaded."""


def chunked(names: Sequence[T]) -> list[list[T]]:
    """``names`` in runs of :data:`CHUNK`, the unit every set-based read works in."""
    return [list(names[start : start + CHUNK]) for start in range(0, len(names), CHUNK)]


_NEW: Callable[[type[Any], tuple[Any, ...]], Any] = tuple.__new__


def _rows(connection: Connection, statement: Select[Any], row: type[R]) -> list[R]:
    """Every row at once, from the driver's plain tuples, as ``row`` (a NamedTuple): one C-level
    tuple copy per row, no Python call."""
    result = connection.execute(statement)
    try:
        return list(map(_NEW, repeat(row), result.cursor.fetchall()))
    finally:
        result.close()


def _naming_columns() -> list[ColumnElement[Any]]:
    """What :func:`wheelfarm.store.views.display_name` reads, first in the rows that need it."""
    p = projects.c
    return [p.name, p.registered_name, p.registered_key, p.removed_key, p.seen_name]


def target_names_of(connection: Connection) -> tuple[str, ...]:
    return tuple(connection.execute(select(targets.c.name).order_by(targets.c.name)).scalars())


def target_distros_of(connection: Connection) -> dict[str, str]:
    """The distro of each target that has one: a handful of rows, read once per load."""
    rows = connection.execute(select(targets.c.name, targets.c.distro).order_by(targets.c.name))
    return {row.name: row.distro for row in rows if row.distro}


class HeadRow(NamedTuple):
    """A project the store knows, with its publication marks (None: never marked)."""

    name: str
    registered_name: str | None
    registered_key: int | None
    removed_key: int | None
    seen_name: str | None
    live: bool
    summary: str | None
    serial: int | None
    listed: str | None
    dirty: bool | None
    quarantined: bool  # quarantined upstream (PEP 792): its pages say so and offer no files
    # PEP 792's marker and reason as the upstream's page last stated them since the project's
    # latest removal (None: none stated, so active).
    status_marker: str | None = None
    status_reason: str | None = None


def read_heads(connection: Connection, among: Among) -> list[HeadRow]:
    p, ip = projects.c, index_projects.c
    quarantined = and_(p.live_key > p.removed_key, p.quarantined, p.quarantine_key > p.removed_key)
    stated = p.status_key > p.removed_key
    statement = (
        select(
            *_naming_columns(),
            project_live_clause(),
            p.summary,
            ip.serial,
            ip.listed,
            ip.dirty,
            quarantined,
            case((stated, p.status_marker), else_=None),
            case((stated, p.status_reason), else_=None),
        )
        .select_from(projects.outerjoin(index_projects, ip.name == p.name))
        .where(among(p.name))
    )
    return _rows(connection, statement, HeadRow)


class IndexRow(NamedTuple):
    """A project's publication marks (the store may no longer know the project itself)."""

    name: str
    serial: int
    listed: str | None
    dirty: bool


def read_index_rows(connection: Connection, among: Among) -> list[IndexRow]:
    ip = index_projects.c
    statement = select(ip.name, ip.serial, ip.listed, ip.dirty).where(among(ip.name))
    return _rows(connection, statement, IndexRow)


class ReleaseRow(NamedTuple):
    """A visible release, with what decides whether the upstream's yank still holds."""

    project: str
    version: str
    prerelease: bool
    yanked: bool
    yank_key: int
    release_removed_key: int
    project_removed_key: int
    yanked_reason: str | None


def read_releases(connection: Connection, among: Among) -> list[ReleaseRow]:
    p, r = projects.c, releases.c
    statement = (
        select(
            r.project,
            r.version,
            r.prerelease,
            r.yanked,
            r.yank_key,
            r.removed_key,
            p.removed_key,
            r.yanked_reason,
        )
        .select_from(releases.join(projects, p.name == r.project))
        .where(among(r.project), release_live_clause())
    )
    return _rows(connection, statement, ReleaseRow)


class UpstreamFileRow(NamedTuple):
    """One of the upstream's live files: release dates, Requires-Python, whether an sdist."""

    project: str
    version: str
    filename: str
    python_version: str | None
    uploaded: str | None
    requires_python: str | None


def read_upstream_files(connection: Connection, among: Among) -> list[UpstreamFileRow]:
    p, r, f = projects.c, releases.c, files.c
    file_join = files.join(releases, and_(r.project == f.project, r.version == f.version)).join(
        projects, p.name == f.project
    )
    statement = (
        select(f.project, f.version, f.filename, f.python_version, f.upload_time, f.requires_python)
        .select_from(file_join)
        .where(among(f.project), file_live_clause())
    )
    return _rows(connection, statement, UpstreamFileRow)


class JobRow(NamedTuple):
    """The queue's state for one release on one target."""

    project: str
    version: str
    target: str
    state: str  # a JobState value
    reason: str | None
    build_number: int  # of its rebuild, 0 when never rebuilt
    rebuild_reason: str | None


def read_jobs(connection: Connection, among: Among) -> list[JobRow]:
    j = jobs.c
    statement = select(
        j.project, j.version, j.target, j.state, j.reason, j.build_number, j.rebuild_reason
    ).where(among(j.project))
    return _rows(connection, statement, JobRow)


class SkipRow(NamedTuple):
    """An operator's reason not to build a release ("" as the version: the whole project)."""

    project: str
    version: str
    reason: str


def read_skips(connection: Connection, among: Among) -> list[SkipRow]:
    s = skips.c
    statement = select(s.project, s.version, s.reason).where(among(s.project))
    return _rows(connection, statement, SkipRow)


class BuildRow(NamedTuple):
    """One build attempt (in no particular order: the latest has the highest id)."""

    id: int
    project: str
    version: str
    target: str
    status: str  # a JobState value: building, built, failed
    has_log: bool
    category: str | None  # a failure's (wheelfarm.farm.triage)
    log_stale: bool  # its log was rewritten since it was published (a re-triage)


def read_builds(connection: Connection, among: Among) -> list[BuildRow]:
    b = builds.c
    statement = select(
        b.id,
        b.project,
        b.version,
        b.target,
        b.status,
        b.log.is_not(None),
        b.category,
        b.log_stale,
    ).where(among(b.project))
    return _rows(connection, statement, BuildRow)


class WheelRow(NamedTuple):
    """One of our wheels, with its build's times (its upload time is when the build ended)."""

    filename: str
    project: str
    version: str
    target: str
    sha256: str
    size: int
    tags: str  # space-separated
    requires_python: str | None
    requires_dist: str | None  # a JSON list
    metadata_sha256: str | None
    build_id: int
    started_at: float
    duration: float | None


def read_wheels(connection: Connection, among: Among) -> list[WheelRow]:
    """In no particular order: sorting release by release afterwards is cheaper than in SQL."""
    b, bf = builds.c, build_files.c
    statement = (
        select(
            bf.filename,
            bf.project,
            bf.version,
            bf.target,
            bf.sha256,
            bf.size,
            bf.tags,
            bf.requires_python,
            bf.requires_dist,
            bf.metadata_sha256,
            bf.build_id,
            b.started_at,
            b.duration,
        )
        .select_from(build_files.join(builds, b.id == bf.build_id))
        .where(among(bf.project))
    )
    return _rows(connection, statement, WheelRow)


def read_wheel_dependencies(connection: Connection, among: Among) -> dict[str, FileDependencies]:
    """System dependencies of the wheels, minus their targets' base images, by file name."""
    return project_wheel_dependencies(connection, among(build_files.c.project))


class ListingRow(NamedTuple):
    """A live project as the site lists it."""

    name: str
    registered_name: str | None
    registered_key: int | None
    removed_key: int | None
    seen_name: str | None
    summary: str | None
    serial: int | None


def read_listing(connection: Connection) -> list[ListingRow]:
    """Every live project, sorted by name."""
    p, ip = projects.c, index_projects.c
    statement = (
        select(*_naming_columns(), p.summary, ip.serial)
        .select_from(projects.outerjoin(index_projects, ip.name == p.name))
        .where(project_live_clause())
        .order_by(p.name)
    )
    return _rows(connection, statement, ListingRow)


class UnlistedRow(NamedTuple):
    """A project published once and not live now (deleted, quarantined): its last serial."""

    name: str
    serial: int


def read_unlisted(connection: Connection) -> list[UnlistedRow]:
    """Every project with a serial that the site does not list: what mirrors must remove."""
    p, ip = projects.c, index_projects.c
    statement = (
        select(ip.name, ip.serial)
        .select_from(index_projects.outerjoin(projects, p.name == ip.name))
        .where(or_(p.name.is_(None), not_(project_live_clause())))
        .order_by(ip.name)
    )
    return _rows(connection, statement, UnlistedRow)


def read_site_serial(connection: Connection) -> int:
    """The highest project serial."""
    serial = index_projects.c.serial
    return int(connection.execute(select(func.coalesce(func.max(serial), 0))).scalar_one())


def count_built(connection: Connection) -> int:
    """How many jobs are built."""
    statement = select(func.count()).select_from(jobs).where(jobs.c.state == JobState.BUILT.value)
    return int(connection.execute(statement).scalar_one())


class PublishedCounts(NamedTuple):
    """How many releases are visible, and how many of our wheels they carry."""

    releases: int
    wheels: int


def count_published(connection: Connection) -> PublishedCounts:
    p, r, bf = projects.c, releases.c, build_files.c
    release_join = releases.join(projects, p.name == r.project)
    live_releases = connection.execute(
        select(func.count()).select_from(release_join).where(release_live_clause())
    ).scalar_one()
    wheel_join = build_files.join(
        releases, and_(r.project == bf.project, r.version == bf.version)
    ).join(projects, p.name == bf.project)
    wheel_count = connection.execute(
        select(func.count()).select_from(wheel_join).where(release_live_clause())
    ).scalar_one()
    return PublishedCounts(int(live_releases), int(wheel_count))
