"""Build the published values (:mod:`wheelfarm.publish.values`) from the store, many at a time.

Loading is set-based: a handful of queries per chunk of names, whatever the chunk holds, because
a full regeneration reads every project. Visibility follows :mod:`wheelfarm.store.views`: only
live projects are published, only visible releases carry wheels, and a release's yank, dates
and Requires-Python are the upstream's.
"""

from __future__ import annotations

import functools
import json
import math
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, TypeVar

from packaging.version import InvalidVersion, Version
from sqlalchemy import ColumnElement, Connection, Select, and_, func, select

from wheelfarm.farm.dependencies import project_wheel_dependencies
from wheelfarm.farm.jobs import JobState
from wheelfarm.names import SDIST_SUFFIXES
from wheelfarm.publish.values import (
    BuildCell,
    ProjectIndex,
    ReleaseIndex,
    SiteIndex,
    SiteProject,
    WheelFile,
)
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
from wheelfarm.store.views import (
    display_name,
    file_live_clause,
    project_live_clause,
    release_live_clause,
)

__all__ = [
    "CHUNK",
    "Publication",
    "chunked",
    "listing_of",
    "load_listing",
    "load_project",
    "load_projects",
    "load_publications",
    "load_site",
    "publishable_name",
    "site_counts",
    "target_names_of",
]

T = TypeVar("T")

CHUNK = 1_000  # names per round of queries: big enough to amortise them, small for IN lists

# A normalised name that is safe as a path component and a URL segment. Anything else (the
# upstream is trusted to refuse such names, but is not relied on) is never published.
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")


# The queue's states by their stored value. A build's status may be none of them (an attempt
# deferred or cancelled): a cell without a job keeps such a status as the string stored.
_STATES = {state.value: state for state in JobState}


def publishable_name(name: str) -> bool:
    """Whether ``name`` is a normalised project name we can use as a path and URL segment."""
    return len(name) <= 255 and _NAME.fullmatch(name) is not None


@dataclass(slots=True)
class Publication:
    """One project as the tree writer needs it: its pages' values and what to take down."""

    name: str
    serial: int  # ours, as read: the writer clears the dirty mark only if it did not move
    listed: str | None  # what the site listed for it when last written
    project: ProjectIndex | None  # None: not live (deleted, quarantined, unknown)
    withdrawn: tuple[str, ...]  # our wheels whose release (or project) is no longer visible
    logs: tuple[int, ...]  # builds of this project that have a log
    dirty: bool = True  # marked changed, or never recorded as written

    @property
    def to_record(self) -> bool:
        """Whether the store must note this write: a dirty mark to clear, a new listing."""
        return self.dirty or self.listed != self.listing

    @property
    def listing(self) -> str | None:
        """What the site lists for the project now; a change means the site pages change."""
        return listing_of(self.project)


def listing_of(project: ProjectIndex | None) -> str | None:
    if project is None:
        return None
    return f"{project.display_name}\n{project.summary or ''}"


_EPOCH = date(1970, 1, 1)


@functools.lru_cache(maxsize=4096)
def _day(days: int) -> str:
    day = _EPOCH + timedelta(days=days)
    return f"{day.year:04}-{day.month:02}-{day.day:02}"


def _iso(timestamp: float) -> str:
    """``%Y-%m-%dT%H:%M:%S.%fZ`` in UTC, as ``datetime.fromtimestamp`` rounds it, at half the
    cost: a regeneration formats every wheel's upload time, and days recur."""
    seconds = math.floor(timestamp)
    micro = round((timestamp - seconds) * 1e6)
    if micro == 1_000_000:
        seconds, micro = seconds + 1, 0
    days, second = divmod(seconds, 86400)
    hour, rest = divmod(second, 3600)
    minute, sec = divmod(rest, 60)
    return f"{_day(days)}T{hour:02}:{minute:02}:{sec:02}.{micro:06}Z"


@functools.lru_cache(maxsize=65536)
def _tags(text: str) -> tuple[str, ...]:
    return tuple(text.split())


@functools.lru_cache(maxsize=65536)
def _requires_dist(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    value = json.loads(text)
    return tuple(str(item) for item in value) if isinstance(value, list) else ()


@functools.lru_cache(maxsize=65536)
def _version_key(version: str) -> tuple[bool, Version, str]:
    """:func:`wheelfarm.names.sort_versions`'s order, cached: versions repeat everywhere."""
    try:
        return (True, Version(version), version)
    except InvalidVersion:
        return (False, Version("0"), version)


def _newest_first(versions: Iterable[str]) -> list[str]:
    """Newest first: the reverse of :func:`wheelfarm.names.sort_versions`."""
    return sorted(versions, key=_version_key, reverse=True)


def chunked(names: Sequence[T]) -> list[list[T]]:
    """``names`` in runs of :data:`CHUNK`, the unit every set-based read works in."""
    return [list(names[start : start + CHUNK]) for start in range(0, len(names), CHUNK)]


def _rows(connection: Connection, statement: Select[Any]) -> list[tuple[Any, ...]]:
    """Every row at once, as the driver's plain tuples.

    A full regeneration reads about fifty rows per project. The statement goes through
    SQLAlchemy as usual (its compiled cache, its parameters), but the rows are taken from the
    driver's cursor, round SQLAlchemy's Row objects and per-column processors: that saves about
    a microsecond per row. No column read here needs a processor: integers, floats, text, and
    booleans (``bool()``-ed where it matters).
    """
    result = connection.execute(statement)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def target_names_of(connection: Connection) -> tuple[str, ...]:
    return tuple(connection.execute(select(targets.c.name).order_by(targets.c.name)).scalars())


def load_publications(
    connection: Connection,
    names: Iterable[str],
    *,
    upstream_simple_url: str,
    target_names: tuple[str, ...] | None = None,
    dense: bool = False,
) -> dict[str, Publication]:
    """Every named project's publication (names the store does not know come back not live).

    ``dense``: the names are (nearly) every project between the first and the last, as in a
    full regeneration, so each chunk is read by a range of names rather than a list of them.
    """
    wanted = sorted(set(names))
    if target_names is None:
        target_names = target_names_of(connection)
    found: dict[str, Publication] = {}
    for chunk in chunked(wanted):
        found.update(_load_chunk(connection, chunk, upstream_simple_url, target_names, dense))
    return found


def load_projects(
    connection: Connection, names: Iterable[str], *, upstream_simple_url: str
) -> dict[str, ProjectIndex]:
    """The live projects among ``names``, by name."""
    publications = load_publications(connection, names, upstream_simple_url=upstream_simple_url)
    return {name: p.project for name, p in publications.items() if p.project is not None}


def load_project(
    connection: Connection, name: str, *, upstream_simple_url: str
) -> ProjectIndex | None:
    """One project's values; None when it is not live (deleted, quarantined or unknown)."""
    return load_projects(connection, [name], upstream_simple_url=upstream_simple_url).get(name)


# What views.display_name reads, in this order at the start of the rows that need it.
_NAMING = ("name", "registered_name", "registered_key", "removed_key", "seen_name")
_HEAD = (*_NAMING, "live", "summary", "serial", "listed", "dirty")


def _naming_columns() -> list[ColumnElement[Any]]:
    p = projects.c
    return [p.name, p.registered_name, p.registered_key, p.removed_key, p.seen_name]


Among = Callable[[ColumnElement[str]], ColumnElement[bool]]
"""Restricts a project-name column to the names being loaded."""


def _load_chunk(
    connection: Connection,
    chunk: list[str],
    upstream_simple_url: str,
    target_names: tuple[str, ...],
    dense: bool,
) -> dict[str, Publication]:
    found: dict[str, Publication] = {}
    rest = chunk
    if dense:
        # A range costs the database (and SQLAlchemy) nothing per name. The database's collation
        # may order names differently from Python, so whatever the range missed is read by name.
        first, last = chunk[0], chunk[-1]
        found = _load(
            connection,
            set(chunk),
            lambda column: column.between(first, last),
            upstream_simple_url,
            target_names,
        )
        rest = [name for name in chunk if name not in found]
    if rest:
        found.update(
            _load(
                connection,
                set(rest),
                lambda column: column.in_(rest),
                upstream_simple_url,
                target_names,
            )
        )
    for name in rest:  # unknown to the store: nothing to publish, nothing to take down
        if name not in found:
            found[name] = Publication(name, 0, None, None, (), ())
    return found


class _Upstream:
    """What a release's live upstream files say: first upload, Requires-Python, an sdist."""

    __slots__ = ("released", "requires", "source")

    def __init__(self) -> None:
        self.released: str | None = None
        self.source = False
        self.requires: dict[str, int] = {}  # Requires-Python: how many files say it

    def add(
        self, filename: str, python_version: str | None, uploaded: str | None, requires: str | None
    ) -> None:
        if uploaded and (self.released is None or uploaded < self.released):
            self.released = uploaded
        if not self.source:
            self.source = python_version == "source" or filename.endswith(SDIST_SUFFIXES)
        if requires:
            self.requires[requires] = self.requires.get(requires, 0) + 1

    def requires_python(self) -> str | None:
        """The one most files say (the upstream gives it per file); a tie goes to the first in
        string order, so the page does not change from one write to the next."""
        if not self.requires:
            return None
        if len(self.requires) == 1:
            return next(iter(self.requires))
        return min(self.requires.items(), key=lambda item: (-item[1], item[0]))[0]


def _load(
    connection: Connection,
    wanted: set[str],
    among: Among,
    upstream_simple_url: str,
    target_names: tuple[str, ...],
) -> dict[str, Publication]:
    """The publications of the ``wanted`` names that ``among`` finds in the store."""
    p, r, f, ip = projects.c, releases.c, files.c, index_projects.c
    heads: dict[str, dict[str, Any]] = {}
    for row in _rows(
        connection,
        select(
            *_naming_columns(),
            project_live_clause(),
            p.summary,
            ip.serial,
            ip.listed,
            ip.dirty,
        )
        .select_from(projects.outerjoin(index_projects, ip.name == p.name))
        .where(among(p.name)),
    ):
        if row[0] in wanted:
            heads[row[0]] = dict(zip(_HEAD, row, strict=True))
    # Names the store does not know may still have a serial (and files to take down).
    for name, serial, listed, dirty in _rows(
        connection, select(ip.name, ip.serial, ip.listed, ip.dirty).where(among(ip.name))
    ):
        if name in wanted and name not in heads:
            heads[name] = {
                "name": name,
                "live": False,
                "serial": serial,
                "listed": listed,
                "dirty": dirty,
            }
    live = {name for name, row in heads.items() if row["live"] and publishable_name(name)}

    # Visible releases, with the upstream's yank (above every removal that covers it).
    release_rows: dict[str, dict[str, tuple[bool, bool, str | None]]] = {n: {} for n in live}
    upstream: dict[tuple[str, str], _Upstream] = {}
    cells: dict[tuple[str, str], dict[str, BuildCell]] = {}
    skipped: dict[str, dict[str, str]] = {}
    if live:
        for project, version, prerelease, yanked, yank_key, r_removed, p_removed, reason in _rows(
            connection,
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
            .where(among(r.project), release_live_clause()),
        ):
            if project in live:
                is_yanked = bool(yanked) and yank_key > max(r_removed, p_removed)
                release_rows[project][version] = (
                    bool(prerelease),
                    is_yanked,
                    reason if is_yanked else None,
                )

        # The upstream's live files: release dates, Requires-Python, whether an sdist exists.
        file_join = files.join(releases, and_(r.project == f.project, r.version == f.version)).join(
            projects, p.name == f.project
        )
        for project, version, filename, python_version, uploaded, requires in _rows(
            connection,
            select(
                f.project,
                f.version,
                f.filename,
                f.python_version,
                f.upload_time,
                f.requires_python,
            )
            .select_from(file_join)
            .where(among(f.project), file_live_clause()),
        ):
            key = (project, version)
            summary = upstream.get(key)
            if summary is None:
                summary = upstream[key] = _Upstream()
            summary.add(filename, python_version, uploaded, requires)

        # The queue's state per (release, target); the latest attempt's id is added below.
        j = jobs.c
        for project, version, target, state, reason in _rows(
            connection,
            select(j.project, j.version, j.target, j.state, j.reason).where(among(j.project)),
        ):
            by_target = cells.get((project, version))
            if by_target is None:
                by_target = cells[(project, version)] = {}
            by_target[target] = BuildCell(target, _STATES.get(state, state), reason, None)
        for project, version, reason in _rows(
            connection,
            select(skips.c.project, skips.c.version, skips.c.reason).where(among(skips.c.project)),
        ):
            skipped.setdefault(project, {})[version] = reason

    b, bf = builds.c, build_files.c
    # The latest attempt per (release, target), for its log link; every build's log.
    logs: dict[str, list[int]] = {}
    jobless: set[tuple[str, str, str]] = set()
    with_log: set[int | None] = set()
    for build_id, project, version, target, status, has_log in _rows(
        connection,
        select(b.id, b.project, b.version, b.target, b.status, b.log.is_not(None)).where(
            among(b.project)
        ),
    ):  # in no particular order: the latest attempt is the one with the highest id
        key = (project, version)
        by_target = cells.get(key)
        if by_target is None:
            by_target = cells[key] = {}
        cell = by_target.get(target)
        if cell is None:  # attempts without a job (its release is no longer built)
            by_target[target] = BuildCell(target, _STATES.get(status, status), None, build_id)
            jobless.add((project, version, target))
        elif cell.build_id is None or build_id > cell.build_id:
            cell.build_id = build_id
            if (project, version, target) in jobless:
                cell.status = _STATES.get(status, status)
        if has_log:
            logs.setdefault(project, []).append(build_id)
            with_log.add(build_id)
    for by_target in cells.values():
        for cell in by_target.values():
            cell.has_log = cell.build_id in with_log

    # Our wheels: published when their release is visible, else to be taken down.
    wheels: dict[tuple[str, str], list[WheelFile]] = {}
    withdrawn: dict[str, list[str]] = {}
    # System dependencies of the wheels, minus their targets' base images (issue 5).
    dependencies = project_wheel_dependencies(connection, among(bf.project))
    no_dependencies = ((), ())
    for (
        filename,
        project,
        version,
        target,
        sha256,
        size,
        tags,
        requires_python,
        requires_dist,
        metadata_sha256,
        build_id,
        started_at,
        duration,
    ) in _rows(
        connection,
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
        .where(among(bf.project)),  # sorted here, release by release: cheaper than in SQL
    ):
        visible = release_rows.get(project)
        if visible is None or version not in visible:
            withdrawn.setdefault(project, []).append(filename)
            continue
        apt, unresolved = dependencies.get(filename, no_dependencies)
        file = WheelFile(
            filename,
            f"/files/{project}/{filename}",
            sha256,
            size,
            target,
            _tags(tags),
            requires_python,
            _requires_dist(requires_dist),
            metadata_sha256,
            _iso(started_at + (duration or 0.0)),
            build_id,
            apt,
            unresolved,
            build_id in with_log,
        )
        key = (project, version)
        same_release = wheels.get(key)
        if same_release is None:
            wheels[key] = [file]
        else:
            same_release.append(file)

    found: dict[str, Publication] = {}
    for name, head_row in heads.items():
        serial = int(head_row["serial"] or 0)
        project_index = None
        if name in live:
            project_index = ProjectIndex(
                name,
                display_name(head_row),
                head_row["summary"],
                serial,
                f"{upstream_simple_url.rstrip('/')}/{name}/",
                target_names,
                _releases(name, release_rows[name], upstream, wheels, cells, skipped.get(name)),
            )
        found[name] = Publication(
            name,
            serial,
            head_row["listed"],
            project_index,
            tuple(sorted(withdrawn.get(name, ()))),
            tuple(sorted(logs.get(name, ()))),
            head_row["dirty"] is None or bool(head_row["dirty"]),
        )
    return found


_NO_UPSTREAM = _Upstream()
_FILENAME = operator.attrgetter("filename")


def _by_filename(files: list[WheelFile] | None) -> tuple[WheelFile, ...]:
    if not files:
        return ()
    if len(files) > 1:
        files.sort(key=_FILENAME)
    return tuple(files)


def _releases(
    name: str,
    release_rows: dict[str, tuple[bool, bool, str | None]],
    upstream: dict[tuple[str, str], _Upstream],
    wheels: dict[tuple[str, str], list[WheelFile]],
    cells: dict[tuple[str, str], dict[str, BuildCell]],
    skipped: dict[str, str] | None,
) -> tuple[ReleaseIndex, ...]:
    """The project's visible releases, newest first."""
    built: list[ReleaseIndex] = []
    project_skip = skipped.get("") if skipped else None
    for version in _newest_first(release_rows):
        prerelease, yanked, reason = release_rows[version]
        key = (name, version)
        theirs = upstream.get(key, _NO_UPSTREAM)
        built.append(
            ReleaseIndex(
                version,
                theirs.released,
                prerelease,
                yanked,
                reason,
                theirs.requires_python(),
                skipped.get(version, project_skip) if skipped else None,
                not theirs.source,
                cells.get(key) or {},
                _by_filename(wheels.get(key)),
            )
        )
    return tuple(built)


def load_site(connection: Connection, *, published: tuple[int, int] | None = None) -> SiteIndex:
    """The whole index in brief: live projects (sorted by name), targets, counts.

    ``published``: the (releases, wheels) a full regeneration just published, which saves
    counting them again over every wheel in the store.
    """
    site = load_listing(connection)
    site.counts = site_counts(connection, site, published)
    return site


def load_listing(connection: Connection) -> SiteIndex:
    """The index without its counts: what every site-wide page but the home page shows."""
    p, ip = projects.c, index_projects.c
    rows = _rows(
        connection,
        select(*_naming_columns(), p.summary, ip.serial)
        .select_from(projects.outerjoin(index_projects, ip.name == p.name))
        .where(project_live_clause())
        .order_by(p.name),
    )
    listed = tuple(
        SiteProject(
            row[0], display_name(dict(zip(_NAMING, row[:5], strict=True))), row[5], row[6] or 0
        )
        for row in rows
        if publishable_name(row[0])
    )
    serial = connection.execute(select(func.coalesce(func.max(ip.serial), 0))).scalar_one()
    return SiteIndex(serial=int(serial), projects=listed, targets=target_names_of(connection))


def site_counts(
    connection: Connection, site: SiteIndex, published: tuple[int, int] | None = None
) -> dict[str, int]:
    """The home page's headline figures for ``site`` (from :func:`load_listing`);
    ``published`` as for :func:`load_site`."""
    if published is None:
        published = _count_published(connection)
    live_releases, wheel_count = published
    built = connection.execute(
        select(func.count()).select_from(jobs).where(jobs.c.state == JobState.BUILT.value)
    ).scalar_one()
    return {
        "projects": len(site.projects),
        "releases": int(live_releases),
        "wheels": int(wheel_count),
        "built": int(built),
        "targets": len(site.targets),
    }


def _count_published(connection: Connection) -> tuple[int, int]:
    """How many releases are visible, and how many of our wheels they carry."""
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
    return int(live_releases), int(wheel_count)
