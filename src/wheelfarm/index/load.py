"""Build the published values (:mod:`wheelfarm.index.model`) from the store, many at a time.

Loading is set-based: a handful of queries per chunk of names, whatever the chunk holds, because
a full regeneration reads every project. Visibility follows :mod:`wheelfarm.store.views`: only
live projects are published, only visible releases carry wheels, and a release's yank, dates
and Requires-Python are the upstream's.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from packaging.version import InvalidVersion, Version
from sqlalchemy import Connection, and_, func, select
from sqlalchemy.sql import Executable

from wheelfarm.farm.sysdeps_store import wheel_dependencies
from wheelfarm.index.model import (
    BuildCell,
    ProjectIndex,
    ReleaseIndex,
    SiteIndex,
    SiteProject,
    WheelFile,
)
from wheelfarm.names import SDIST_SUFFIXES
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
    "listing_of",
    "load_project",
    "load_projects",
    "load_publications",
    "load_site",
    "publishable_name",
    "target_names_of",
]

CHUNK = 1_000  # names per round of queries: big enough to amortise them, small for IN lists

# A normalised name that is safe as a path component and a URL segment. Anything else (the
# upstream is trusted to refuse such names, but is not relied on) is never published.
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")


def publishable_name(name: str) -> bool:
    """Whether ``name`` is a normalised project name we can use as a path and URL segment."""
    return len(name) <= 255 and _NAME.fullmatch(name) is not None


@dataclass(frozen=True)
class Publication:
    """One project as the tree writer needs it: its pages' values and what to take down."""

    name: str
    serial: int  # ours, as read: the writer clears the dirty mark only if it did not move
    listed: str | None  # what the site listed for it when last written
    project: ProjectIndex | None  # None: not live (deleted, quarantined, unknown)
    withdrawn: tuple[str, ...]  # our wheels whose release (or project) is no longer visible
    logs: tuple[int, ...]  # builds of this project that have a log

    @property
    def listing(self) -> str | None:
        """What the site lists for the project now; a change means the site pages change."""
        return listing_of(self.project)


def listing_of(project: ProjectIndex | None) -> str | None:
    if project is None:
        return None
    return f"{project.display_name}\n{project.summary or ''}"


def _iso(timestamp: float) -> str:
    """``%Y-%m-%dT%H:%M:%S.%fZ``; isoformat is several times faster than strftime."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    if moment.year < 1000:  # isoformat does not pad the year as strftime does; never in practice
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{moment.isoformat(timespec='microseconds')[:-6]}Z"


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


def _chunks(names: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(names), CHUNK):
        yield list(names[start : start + CHUNK])


def _rows(connection: Connection, statement: Executable) -> Sequence[Any]:
    """Every row at once: the driver's fetchall costs a fraction of row-by-row iteration."""
    return connection.execute(statement).all()


def target_names_of(connection: Connection) -> tuple[str, ...]:
    return tuple(connection.execute(select(targets.c.name).order_by(targets.c.name)).scalars())


def load_publications(
    connection: Connection,
    names: Iterable[str],
    *,
    upstream_simple_url: str,
    target_names: tuple[str, ...] | None = None,
) -> dict[str, Publication]:
    """Every named project's publication (names the store does not know come back not live)."""
    wanted = sorted(set(names))
    if target_names is None:
        target_names = target_names_of(connection)
    found: dict[str, Publication] = {}
    for chunk in _chunks(wanted):
        found.update(_load_chunk(connection, chunk, upstream_simple_url, target_names))
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


@dataclass(slots=True)
class _Cell:
    state: str | None  # the job's, when there is a job
    reason: str | None
    build_id: int | None = None  # the latest attempt
    build_status: str | None = None


def _load_chunk(
    connection: Connection,
    chunk: list[str],
    upstream_simple_url: str,
    target_names: tuple[str, ...],
) -> dict[str, Publication]:
    p, r, f, ip = projects.c, releases.c, files.c, index_projects.c
    head = connection.execute(
        select(
            p.name,
            project_live_clause().label("live"),
            p.registered_name,
            p.registered_key,
            p.removed_key,
            p.seen_name,
            p.summary,
            ip.serial,
            ip.listed,
        )
        .select_from(projects.outerjoin(index_projects, ip.name == p.name))
        .where(p.name.in_(chunk))
    ).mappings()
    heads: dict[str, Any] = {row["name"]: row for row in head}
    # Names the store does not know may still have a serial (and files to take down).
    for name, serial, listed in _rows(
        connection, select(ip.name, ip.serial, ip.listed).where(ip.name.in_(chunk))
    ):
        heads.setdefault(name, {"name": name, "live": False, "serial": serial, "listed": listed})
    for name in chunk:
        heads.setdefault(name, {"name": name, "live": False, "serial": 0, "listed": None})
    live = [name for name, row in heads.items() if row["live"] and publishable_name(name)]

    # Visible releases, with the upstream's yank (above every removal that covers it).
    release_rows: dict[str, dict[str, tuple[bool, bool, str | None]]] = {n: {} for n in live}
    if live:
        for (
            project,
            version,
            prerelease,
            yanked,
            yank_key,
            r_removed,
            p_removed,
            reason,
        ) in _rows(
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
            .where(r.project.in_(live), release_live_clause()),
        ):
            is_yanked = bool(yanked) and yank_key > max(r_removed, p_removed)
            release_rows[project][version] = (
                bool(prerelease),
                is_yanked,
                reason if is_yanked else None,
            )

    # The upstream's live files: release dates, Requires-Python, whether an sdist exists.
    upstream: dict[tuple[str, str], list[tuple[str, str | None, str | None, str | None]]] = {}
    if live:
        file_join = files.join(releases, and_(r.project == f.project, r.version == f.version)).join(
            projects, p.name == f.project
        )
        for (
            project,
            version,
            filename,
            python_version,
            uploaded,
            requires_python,
        ) in _rows(
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
            .where(f.project.in_(live), file_live_clause()),
        ):
            upstream.setdefault((project, version), []).append(
                (filename, python_version, uploaded, requires_python)
            )

    # Our wheels: published when their release is visible, else to be taken down.
    b, bf = builds.c, build_files.c
    wheels: dict[tuple[str, str], list[WheelFile]] = {}
    withdrawn: dict[str, list[str]] = {}
    wheel_rows = _rows(
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
        .where(bf.project.in_(chunk))
        .order_by(bf.filename),
    )
    # System dependencies of the published wheels, minus their targets' base images (issue 5).
    published = [row[0] for row in wheel_rows if row[2] in release_rows.get(row[1], ())]
    dependencies = wheel_dependencies(connection, published)
    for row in wheel_rows:
        (filename, project, version, target, sha256, size, tags, requires_python) = row[:8]
        requires_dist, metadata_sha256, build_id, started_at, duration = row[8:]
        if version not in release_rows.get(project, ()):
            withdrawn.setdefault(project, []).append(filename)
            continue
        apt, unresolved = dependencies.get(filename, ((), ()))
        wheels.setdefault((project, version), []).append(
            WheelFile(
                filename=filename,
                url=f"/files/{project}/{filename}",
                sha256=sha256,
                size=size,
                target=target,
                tags=_tags(tags),
                requires_python=requires_python,
                requires_dist=_requires_dist(requires_dist),
                metadata_sha256=metadata_sha256,
                uploaded=_iso(started_at + (duration or 0.0)),
                build_id=build_id,
                apt_dependencies=apt,
                unresolved_libraries=unresolved,
            )
        )

    # The queue's state per (release, target), with the latest attempt; every build's log.
    cells: dict[tuple[str, str], dict[str, _Cell]] = {}
    logs: dict[str, list[int]] = {}
    if live:
        for project, version, target, state, reason in _rows(
            connection,
            select(
                jobs.c.project, jobs.c.version, jobs.c.target, jobs.c.state, jobs.c.reason
            ).where(jobs.c.project.in_(live)),
        ):
            cells.setdefault((project, version), {})[target] = _Cell(state, reason)
    for build_id, project, version, target, status, has_log in _rows(
        connection,
        select(b.id, b.project, b.version, b.target, b.status, b.log.is_not(None))
        .where(b.project.in_(chunk))
        .order_by(b.id),
    ):
        by_target = cells.setdefault((project, version), {})
        cell = by_target.get(target)
        if cell is None:
            by_target[target] = _Cell(None, None, build_id, status)
        else:
            cell.build_id, cell.build_status = build_id, status
        if has_log:
            logs.setdefault(project, []).append(build_id)
    skipped: dict[str, dict[str, str]] = {}
    if live:
        for project, version, reason in _rows(
            connection,
            select(skips.c.project, skips.c.version, skips.c.reason).where(
                skips.c.project.in_(live)
            ),
        ):
            skipped.setdefault(project, {})[version] = reason

    found: dict[str, Publication] = {}
    for name, head_row in heads.items():
        project_index = None
        if name in release_rows:
            project_index = _project(
                name,
                head_row,
                release_rows[name],
                upstream,
                wheels,
                cells,
                skipped.get(name, {}),
                upstream_simple_url,
                target_names,
            )
        found[name] = Publication(
            name=name,
            serial=int(head_row["serial"] or 0),
            listed=head_row["listed"],
            project=project_index,
            withdrawn=tuple(withdrawn.get(name, ())),
            logs=tuple(logs.get(name, ())),
        )
    return found


def _project(
    name: str,
    head: Any,
    release_rows: dict[str, tuple[bool, bool, str | None]],
    upstream: dict[tuple[str, str], list[tuple[str, str | None, str | None, str | None]]],
    wheels: dict[tuple[str, str], list[WheelFile]],
    cells: dict[tuple[str, str], dict[str, _Cell]],
    skipped: dict[str, str],
    upstream_simple_url: str,
    target_names: tuple[str, ...],
) -> ProjectIndex:
    built: list[ReleaseIndex] = []
    for version in _newest_first(release_rows):
        prerelease, yanked, reason = release_rows[version]
        theirs = upstream.get((name, version), [])
        uploaded = [u for _f, _p, u, _r in theirs if u]
        requires = [r for _f, _p, _u, r in theirs if r]
        if len(set(requires)) > 1:
            requires = [Counter(requires).most_common(1)[0][0]]
        source = any(
            python_version == "source" or filename.endswith(SDIST_SUFFIXES)
            for filename, python_version, _u, _r in theirs
        )
        builds_by_target = {
            target: BuildCell(
                target=target,
                status=cell.state or cell.build_status or "pending",
                reason=cell.reason,
                build_id=cell.build_id,
            )
            for target, cell in sorted(cells.get((name, version), {}).items())
        }
        built.append(
            ReleaseIndex(
                version=version,
                released=min(uploaded) if uploaded else None,
                prerelease=prerelease,
                yanked=yanked,
                yanked_reason=reason,
                requires_python=requires[0] if requires else None,
                skip=skipped.get(version, skipped.get("")),
                binary_only=not source,
                builds=builds_by_target,
                files=tuple(wheels.get((name, version), ())),
            )
        )
    return ProjectIndex(
        name=name,
        display_name=display_name(head),
        summary=head["summary"],
        serial=int(head["serial"] or 0),
        upstream_url=f"{upstream_simple_url.rstrip('/')}/{name}/",
        targets=target_names,
        releases=tuple(built),
    )


def load_site(connection: Connection) -> SiteIndex:
    """The whole index in brief: live projects (sorted by name), targets, counts."""
    p, ip = projects.c, index_projects.c
    rows = connection.execute(
        select(
            p.name,
            p.registered_name,
            p.registered_key,
            p.removed_key,
            p.seen_name,
            p.summary,
            ip.serial,
        )
        .select_from(projects.outerjoin(index_projects, ip.name == p.name))
        .where(project_live_clause())
        .order_by(p.name)
    ).mappings()
    listed = tuple(
        SiteProject(row["name"], display_name(row), row["summary"], int(row["serial"] or 0))
        for row in rows
        if publishable_name(row["name"])
    )
    r, bf = releases.c, build_files.c
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
    built = connection.execute(
        select(func.count()).select_from(jobs).where(jobs.c.state == "built")
    ).scalar_one()
    serial = connection.execute(select(func.coalesce(func.max(ip.serial), 0))).scalar_one()
    target_names = target_names_of(connection)
    return SiteIndex(
        serial=int(serial),
        projects=listed,
        targets=target_names,
        counts={
            "projects": len(listed),
            "releases": int(live_releases),
            "wheels": int(wheel_count),
            "built": int(built),
            "targets": len(target_names),
        },
    )
