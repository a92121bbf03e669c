"""Assemble one chunk's rows (:mod:`wheelfarm.publish.queries`) into published values.

The loader (:mod:`wheelfarm.publish.loader`) runs the queries and feeds their rows to
:class:`Parts`, which gathers them by project and release and then builds each project's
:class:`~wheelfarm.publish.publication.Publication`. This is the hot path of a full
regeneration (about fifty rows per project), so rows are read by attribute from their
NamedTuples, values are slotted dataclasses built positionally, and what recurs (days, tags,
Requires-Dist, version keys) is cached.
"""

from __future__ import annotations

import functools
import json
import math
import operator
from collections.abc import Iterable
from datetime import date, timedelta

from packaging.version import InvalidVersion, Version

from wheelfarm.farm.dependencies import FileDependencies
from wheelfarm.farm.jobs import JobState
from wheelfarm.names import SDIST_SUFFIXES
from wheelfarm.publish.download_queries import OLDER, DownloadRow
from wheelfarm.publish.publication import Publication, Quarantine
from wheelfarm.publish.queries import (
    BuildRow,
    HeadRow,
    JobRow,
    ReleaseRow,
    SkipRow,
    UpstreamFileRow,
    WheelRow,
)
from wheelfarm.publish.values import (
    DOWNLOAD_DAYS,
    BuildCell,
    ProjectDownloads,
    ProjectIndex,
    ReleaseIndex,
    WheelFile,
    plain_path,
)
from wheelfarm.store.views import spelled_name

__all__ = ["Parts"]

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


# The queue's states by their stored value. A build's status may be none of them (an attempt
# deferred or cancelled): a cell without a job keeps such a status as the string stored.
_STATES = {state.value: state for state in JobState}


class _Upstream:
    """What a release's live upstream files say: first upload, Requires-Python, an sdist."""

    __slots__ = ("released", "requires", "source")

    def __init__(self) -> None:
        self.released: str | None = None
        self.source = False
        self.requires: dict[str, int] = {}  # Requires-Python: how many files say it

    def add(self, row: UpstreamFileRow) -> None:
        uploaded = row.uploaded
        if uploaded and (self.released is None or uploaded < self.released):
            self.released = uploaded
        if not self.source:
            self.source = row.python_version == "source" or row.filename.endswith(SDIST_SUFFIXES)
        requires = row.requires_python
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


_NO_UPSTREAM = _Upstream()
_NO_DEPENDENCIES = FileDependencies((), ())
_FILENAME = operator.attrgetter("filename")

Release = tuple[str, str]  # (project, version)


def _spelling(head: HeadRow) -> str:
    """The project's display name (:func:`~wheelfarm.store.views.display_name`)."""
    return spelled_name(
        head.name, head.registered_name, head.registered_key, head.removed_key, head.seen_name
    )


class Parts:
    """One chunk's rows, gathered by project and release, then assembled into publications."""

    __slots__ = (
        "cells",
        "downloads",
        "live",
        "logs",
        "no_downloads",
        "releases",
        "skipped",
        "stale_logs",
        "today",
        "upstream",
        "wheels",
        "with_log",
        "withdrawn",
    )

    def __init__(self, live: set[str], today: int = 0) -> None:
        self.live = live
        self.today = today  # the last plotted day of the downloads
        self.releases: dict[str, dict[str, ReleaseRow]] = {name: {} for name in live}  # visible
        self.upstream: dict[Release, _Upstream] = {}
        self.cells: dict[Release, dict[str, BuildCell]] = {}  # by target
        self.skipped: dict[str, dict[str, str]] = {}  # by project, then version ("": all)
        self.logs: dict[str, list[int]] = {}  # builds with a log, by project
        self.with_log: set[int | None] = set()  # every build with a log
        self.stale_logs: dict[str, list[int]] = {}  # logs rewritten since published, by project
        self.wheels: dict[Release, list[WheelFile]] = {}  # published
        self.withdrawn: dict[str, list[str]] = {}  # wheels to take down, by project
        self.downloads: dict[str, ProjectDownloads] = {}  # projects with any
        self.no_downloads = ProjectDownloads(today=today)  # shared by the rest

    def add_downloads(self, rows: list[DownloadRow]) -> None:
        """Downloads per plotted day (today last) and in all, by project."""
        today = self.today
        first = today - DOWNLOAD_DAYS + 1
        daily: dict[str, list[int]] = {}
        totals: dict[str, int] = {}
        for row in rows:
            days = daily.get(row.project)
            if days is None:
                days = daily[row.project] = [0] * DOWNLOAD_DAYS
            if row.day != OLDER and 0 <= row.day - first < DOWNLOAD_DAYS:
                days[row.day - first] += row.downloads
            totals[row.project] = totals.get(row.project, 0) + row.downloads
        for name, days in daily.items():
            self.downloads[name] = ProjectDownloads(sum(days), totals[name], tuple(days), today)

    def add_releases(self, rows: list[ReleaseRow]) -> None:
        live, releases = self.live, self.releases
        for row in rows:
            if row.project in live:
                releases[row.project][row.version] = row

    def add_upstream_files(self, rows: list[UpstreamFileRow]) -> None:
        upstream = self.upstream
        for row in rows:
            key = (row.project, row.version)
            summary = upstream.get(key)
            if summary is None:
                summary = upstream[key] = _Upstream()
            summary.add(row)

    def add_jobs(self, rows: list[JobRow]) -> None:
        """The queue's state per (release, target); the latest attempt's id comes with builds."""
        cells, states = self.cells, _STATES
        for row in rows:
            by_target = cells.get((row.project, row.version))
            if by_target is None:
                by_target = cells[(row.project, row.version)] = {}
            state = states.get(row.state, row.state)
            cell = by_target[row.target] = BuildCell(row.target, state, row.reason, None)
            if row.build_number:
                cell.build_number, cell.rebuild_reason = row.build_number, row.rebuild_reason

    def add_skips(self, rows: list[SkipRow]) -> None:
        for row in rows:
            self.skipped.setdefault(row.project, {})[row.version] = row.reason

    def add_builds(self, rows: list[BuildRow]) -> None:
        """The latest attempt per (release, target), for its log link; every build's log."""
        cells, logs = self.cells, self.logs
        jobless: set[tuple[str, str, str]] = set()
        with_log = self.with_log
        for row in rows:  # in no particular order: the latest attempt has the highest id
            key = (row.project, row.version)
            by_target = cells.get(key)
            if by_target is None:
                by_target = cells[key] = {}
            build_id = row.id
            cell = by_target.get(row.target)
            if cell is None:  # attempts without a job (its release is no longer built)
                status = _STATES.get(row.status, row.status)
                cell = by_target[row.target] = BuildCell(row.target, status, None, build_id)
                cell.category = row.category
                jobless.add((row.project, row.version, row.target))
            elif cell.build_id is None or build_id > cell.build_id:
                cell.build_id = build_id
                cell.category = row.category
                if (row.project, row.version, row.target) in jobless:
                    cell.status = _STATES.get(row.status, row.status)
            if row.has_log:
                logs.setdefault(row.project, []).append(build_id)
                with_log.add(build_id)
                if row.log_stale:
                    self.stale_logs.setdefault(row.project, []).append(build_id)
        for by_target in cells.values():
            for cell in by_target.values():
                cell.has_log = cell.build_id in with_log

    def add_wheels(self, rows: list[WheelRow], dependencies: dict[str, FileDependencies]) -> None:
        """Our wheels: published when their release is visible, else to be taken down. Needs
        :meth:`add_builds` first (a wheel links its build's log only when it is kept)."""
        releases, wheels, with_log = self.releases, self.wheels, self.with_log
        for row in rows:
            project, version, filename = row.project, row.version, row.filename
            visible = releases.get(project)
            if visible is None or version not in visible:
                self.withdrawn.setdefault(project, []).append(filename)
                continue
            apt, unresolved = dependencies.get(filename, _NO_DEPENDENCIES)
            url = f"/files/{project}/{filename}"
            file = WheelFile(
                filename,
                url,
                row.sha256,
                row.size,
                row.target,
                _tags(row.tags),
                row.requires_python,
                _requires_dist(row.requires_dist),
                row.metadata_sha256,
                _iso(row.started_at + (row.duration or 0.0)),
                row.build_id,
                apt,
                unresolved,
                row.build_id in with_log,
                plain_path(url),
            )
            same_release = wheels.get((project, version))
            if same_release is None:
                wheels[(project, version)] = [file]
            else:
                same_release.append(file)

    def publication(
        self,
        head: HeadRow,
        upstream_url: str,
        target_names: tuple[str, ...],
        target_distros: dict[str, str],
        unserved: dict[str, str] | None = None,
    ) -> Publication:
        name = head.name
        serial = int(head.serial or 0)
        project = None
        quarantine = None
        marker, reason = head.status_marker or "active", head.status_reason
        if head.quarantined:
            quarantine = Quarantine(
                _spelling(head),
                f"{upstream_url}/{name}/",
                reason if marker == "quarantined" else None,
            )
        if marker == "quarantined":  # its page said so, an event lifted it since: active
            marker, reason = "active", None
        if name in self.live:
            project = ProjectIndex(
                name,
                _spelling(head),
                head.summary,
                serial,
                f"{upstream_url}/{name}/",
                target_names,
                self._visible_releases(name),
                target_distros,
                marker,
                reason if marker != "active" else None,
                self.downloads.get(name) or self.no_downloads,
                unserved or {},
            )
        return Publication(
            name,
            serial,
            head.listed,
            project,
            tuple(sorted(self.withdrawn.get(name, ()))),
            tuple(sorted(self.logs.get(name, ()))),
            head.dirty is None or bool(head.dirty),
            quarantine,
            tuple(sorted(self.stale_logs.get(name, ()))),
        )

    def _visible_releases(self, name: str) -> tuple[ReleaseIndex, ...]:
        """The project's visible releases, newest first."""
        rows = self.releases[name]
        skipped = self.skipped.get(name)
        project_skip = skipped.get("") if skipped else None
        built: list[ReleaseIndex] = []
        for version in _newest_first(rows):
            row = rows[version]
            # The upstream's yank, above every removal that covers it.
            yanked = bool(row.yanked) and row.yank_key > max(
                row.release_removed_key, row.project_removed_key
            )
            key = (name, version)
            theirs = self.upstream.get(key, _NO_UPSTREAM)
            built.append(
                ReleaseIndex(
                    version,
                    theirs.released,
                    bool(row.prerelease),
                    yanked,
                    row.yanked_reason if yanked else None,
                    theirs.requires_python(),
                    skipped.get(version, project_skip) if skipped else None,
                    not theirs.source,
                    self.cells.get(key) or {},
                    _by_filename(self.wheels.get(key)),
                )
            )
        return tuple(built)


def _by_filename(files: list[WheelFile] | None) -> tuple[WheelFile, ...]:
    if not files:
        return ()
    if len(files) > 1:
        files.sort(key=_FILENAME)
    return tuple(files)
