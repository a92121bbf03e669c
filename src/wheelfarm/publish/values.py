"""What the published index shows, as plain values: the contract between store and pages.

The loader (:mod:`wheelfarm.publish.loader`) builds these from the store; the renderers (simple
pages, project pages, JSON API, badges) only read them, so every page is a pure function of its
values.

They are read-only by convention, not ``frozen``: a full regeneration builds about forty of them
per project, and a frozen dataclass's ``__init__`` costs four to six times a plain one's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from wheelfarm.farm.jobs import JobState

__all__ = [
    "DOWNLOAD_DAYS",
    "BuildCell",
    "ProjectDownloads",
    "ProjectIndex",
    "ReleaseIndex",
    "SiteIndex",
    "SiteProject",
    "WheelFile",
    "plain_path",
    "stored_status",
    "without_extension_modules",
]


_PLAIN_PATH = re.compile(r"/[A-Za-z0-9_.~-][A-Za-z0-9_.~/-]*").fullmatch


def plain_path(path: str) -> bool:
    """Whether a root-relative path is the same quoted for an ``href`` or a JSON ``url`` as
    it is (unreserved characters and slashes only, not ``//``) and needs no HTML escaping."""
    return _PLAIN_PATH(path) is not None


@dataclass(slots=True)
class WheelFile:
    """One wheel we publish, with what installers and people need to know about it."""

    filename: str
    url: str  # from the site root: /files/<project>/<filename>
    sha256: str
    size: int
    target: str  # the target it was built (or imported) for
    tags: tuple[str, ...]  # every tag in the file name, e.g. ("cp311-cp311-linux_armv7l",)
    requires_python: str | None
    requires_dist: tuple[str, ...]
    metadata_sha256: str | None  # sha256 of the METADATA bytes (PEP 658); None when not kept
    uploaded: str  # ISO 8601 UTC, when the wheel was stored, e.g. "2026-11-23T10:00:00.123456Z"
    build_id: int
    apt_dependencies: tuple[str, ...] = ()  # Debian packages needed beyond the target's base
    unresolved_libraries: tuple[str, ...] = ()  # sonames no package was found for
    has_log: bool = True  # whether its build's log is kept (an imported wheel has none)
    # Whether ``url`` needs no quoting on any page (see plain_path): the loader asks once per
    # file, where four renderers each asked (False: each renderer quotes it as it must).
    plain_url: bool = False


@dataclass(slots=True)
class BuildCell:
    """One release on one target: the queue's state and the latest attempt (for its log)."""

    target: str
    # The queue's state. A string only when the release has no job and its latest attempt's
    # outcome is no queue state (deferred, cancelled): the pages show that as "unknown".
    status: JobState | str
    reason: str | None  # why it failed or was skipped
    build_id: int | None  # the latest attempt, whose log is at /logs/<build_id>.txt
    has_log: bool = True  # whether that attempt's log is kept
    build_number: int = 0  # the build tag of its rebuild (0: never rebuilt; docs/farm.md)
    rebuild_reason: str | None = None  # why an operator rebuilt it
    category: str | None = None  # why the latest attempt failed (wheelfarm.farm.triage)


def stored_status(status: JobState | str) -> str:
    """A cell's status as the store holds it ("built", "deferred"): what the JSON API shows.

    Reads the member's ``_value_`` (enum's documented sunder name) rather than ``value``: that
    property costs ten times more, and every cell of every project is rendered.
    """
    if isinstance(status, JobState):
        value: str = status._value_
        return value
    return status


@dataclass(slots=True)
class ReleaseIndex:
    version: str
    released: str | None  # ISO 8601, the earliest upstream upload time of the release's files
    prerelease: bool
    yanked: bool
    yanked_reason: str | None
    requires_python: str | None  # the upstream's, from its files
    skip: str | None  # an operator's reason not to build it (wheelfarm skip)
    binary_only: bool  # no source distribution upstream, so never built here
    builds: dict[str, BuildCell]  # by target name
    files: tuple[WheelFile, ...]  # our wheels, sorted by file name
    # What without_extension_modules found, kept: the project page, its file list and its JSON
    # all ask (three passes over every release's wheels, 8% of a regeneration, profiled).
    flagged: frozenset[str] | None = None


_NONE: frozenset[str] = frozenset()


@lru_cache(maxsize=4096)
def _pure(tags: tuple[str, ...]) -> bool:
    """Whether a wheel with these tags runs anywhere (every tag's platform is ``any``): no
    compiled code. Cached: a load's wheels share a few tag sets."""
    return all(tag.endswith("-any") for tag in tags)


def without_extension_modules(release: ReleaseIndex) -> frozenset[str]:
    """The targets whose build of ``release`` gave only a pure wheel where another target's
    gave a platform wheel: an optional extension that failed to compile there (a missing
    header, a broken emulator), which users of that target should know about."""
    flagged = release.flagged
    if flagged is None:
        flagged = release.flagged = _flagged(release.files)
    return flagged


def _flagged(files: tuple[WheelFile, ...]) -> frozenset[str]:
    if len(files) < 2:
        return _NONE
    platform: set[str] = set()
    pure: set[str] = set()
    for wheel in files:
        (pure if _pure(wheel.tags) else platform).add(wheel.target)
    if not platform or not pure:
        return _NONE
    return frozenset(pure - platform)


DOWNLOAD_DAYS = 30
"""The days a project's downloads-per-day plot covers, today last; its "last 30 days" figure."""


@dataclass(slots=True, frozen=True)
class ProjectDownloads:
    """A project's downloads as its pages show them (``stats_daily``, bots not counted)."""

    last_30_days: int = 0
    total: int = 0
    daily: tuple[int, ...] = (0,) * DOWNLOAD_DAYS  # per day, oldest first, today last
    today: int = 0  # the last day of ``daily``, in days since 1970-01-01 (UTC)


_NO_DOWNLOADS = ProjectDownloads()


@dataclass(slots=True)
class ProjectIndex:
    """Everything the project's pages show. Releases are newest first (PEP 440 order)."""

    name: str  # normalised (PEP 503)
    display_name: str
    summary: str | None
    serial: int  # ours: the index serial of the project's last published change
    upstream_url: str  # the project's simple page on the upstream index (PEP 708's "tracks")
    targets: tuple[str, ...]  # every configured target, the columns of the releases table
    releases: tuple[ReleaseIndex, ...]
    # The distro of each target that has one (shared by every project of a load): what the
    # pages put into words beside the target's name.
    target_distros: dict[str, str] = field(default_factory=dict)
    # PEP 792's status marker, mirrored from the upstream's page: "active", "archived" or
    # "deprecated" (a quarantined project has no ProjectIndex: it offers nothing), and its reason.
    status: str = "active"
    status_reason: str | None = None
    downloads: ProjectDownloads = _NO_DOWNLOADS
    # Targets no builder serves (farm/unserved.py), and what a build waiting for one says.
    unserved: dict[str, str] = field(default_factory=dict)

    @property
    def upstream_project_url(self) -> str:
        """The project's page for people on the upstream (``<base>/project/<name>/``), when the
        upstream has the usual layout (``<base>/simple/<name>/``); else its simple page."""
        base, marker, rest = self.upstream_url.rpartition("/simple/")
        if marker and rest == f"{self.name}/":
            return f"{base}/project/{self.name}/"
        return self.upstream_url

    @property
    def files(self) -> tuple[WheelFile, ...]:
        """Every wheel of every release, as the simple pages list them."""
        return tuple(f for release in self.releases for f in release.files)


@dataclass(slots=True)
class SiteProject:
    name: str
    display_name: str
    summary: str | None
    serial: int
    downloads_30d: int = 0  # what packages.json shows beside each project
    downloads_total: int = 0


@dataclass(slots=True)
class SiteIndex:
    """The whole index in brief: the simple root, packages.json, the home page and the sitemap."""

    serial: int  # ours: the highest project serial
    projects: tuple[SiteProject, ...]  # live projects, sorted by normalised name
    targets: tuple[str, ...]
    counts: dict[str, int] = field(default_factory=dict)  # projects, releases, wheels, built, ...
    target_distros: dict[str, str] = field(default_factory=dict)  # as in ProjectIndex
    # Projects published once and not listed now (deleted, quarantined), with their serials:
    # the mirroring API's changelog names them, so a mirror learns they are gone.
    unlisted: dict[str, int] = field(default_factory=dict)
    # Targets whose pending jobs no builder serves, as the home page says it: a static page must
    # stay true until it is written again, so "since <time>", never "for 3 h".
    unserved: tuple[str, ...] = ()
    failures: dict[str, int] = field(default_factory=dict)  # failed jobs by category
