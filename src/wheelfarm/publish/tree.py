"""Write the published tree: a static site any web server can serve as it is.

Every file is written under a temporary name in its own directory and renamed into place, so a
reader sees the old bytes or the new ones, never a mix. A file whose bytes would not change is
not touched, which keeps its mtime (and a web server's ETag) stable. A project that is no longer
live loses its pages, badge, logs and wheels, so it answers 404 everywhere; its wheels (and those
of a release that is gone) are moved to the withdrawn directory, not deleted, and come back if
the project or release does (a quarantine that is lifted, say).

Durability: one-project writes fsync each file and its directory. A full regeneration does not
fsync file by file (that would cost more than the writing); it syncs the file systems once at
the end, when it wrote or removed anything. A crash in between can leave files of the
regeneration unwritten or empty; the next ``wheelfarm write --all`` (and every start of
``wheelfarm up``) rewrites whatever differs.
"""

from __future__ import annotations

import errno
import fcntl
import gc
import itertools
import multiprocessing
import os
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Engine, select

from wheelfarm.publish import simple, site_pages
from wheelfarm.publish.loader import (
    CHUNK,
    Publication,
    chunked,
    load_listing,
    load_publications,
    load_site,
    publishable_name,
    site_counts,
    target_names_of,
)
from wheelfarm.publish.orphans import die_with_parent
from wheelfarm.publish.values import ProjectIndex, SiteIndex
from wheelfarm.store.database import create_store_engine
from wheelfarm.store.marks import dirty_projects, mark_written
from wheelfarm.store.schema import build_files, builds
from wheelfarm.store.views import live_project_names

__all__ = [
    "Blobs",
    "Existing",
    "Report",
    "SiteClock",
    "Tree",
    "publish_dirty",
    "write_all",
    "write_home",
    "write_listings",
    "write_project",
    "write_site",
]

Progress = Callable[[int, int], None]


@dataclass
class Report:
    """What a write did."""

    projects: int = 0  # projects looked at
    written: int = 0  # files created or replaced
    removed: int = 0  # files removed (or wheels withdrawn)
    site: bool = False  # whether the site-wide pages were written
    changed: list[str] = field(default_factory=list)  # projects with a file written or removed
    releases: int = 0  # visible releases of the live projects written
    wheels: int = 0  # wheels those releases carry

    def add(self, other: Report) -> None:
        self.projects += other.projects
        self.written += other.written
        self.removed += other.removed
        self.releases += other.releases
        self.wheels += other.wheels
        self.site = self.site or other.site
        self.changed.extend(other.changed)


class Tree:
    """The published tree under ``root``; wheels taken down go to ``withdrawn``."""

    def __init__(self, root: Path, withdrawn: Path, *, durable: bool = True) -> None:
        self.root = root
        self.withdrawn = withdrawn
        self.durable = durable
        self.simple = root / "simple"
        self.files = root / "files"
        self.project = root / "project"
        self.badges = root / "badges"
        self.logs = root / "logs"
        self.static = root / "static"
        self._touched_dirs: set[str] = set()  # to fsync, when durable

    # -- single files --------------------------------------------------------------------

    def put(self, path: Path | str, data: bytes) -> bool:
        """Make ``path`` hold ``data`` atomically; returns False when it already did."""
        path = os.fspath(path)
        try:
            descriptor = _open_to_compare(path)
        except FileNotFoundError:
            pass
        else:
            try:
                # A regular file's read returns everything up to the size asked for.
                if os.read(descriptor, len(data) + 1) == data:
                    return False
            finally:
                os.close(descriptor)
        parent, _, base = path.rpartition("/")
        temporary = f"{parent}/.{base}.{os.getpid()}.{threading.get_ident()}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        try:
            descriptor = os.open(temporary, flags, 0o644)
        except FileNotFoundError:
            os.makedirs(parent, exist_ok=True)
            descriptor = os.open(temporary, flags, 0o644)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(descriptor, view) :]
                if self.durable:
                    os.fsync(descriptor)
            finally:
                os.close(descriptor)
            os.replace(temporary, path)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        if self.durable:
            self._touched_dirs.add(parent)
        return True

    def remove(self, path: Path) -> bool:
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        self._touched_dirs.add(str(path.parent))
        return True

    def prune(self, directory: Path) -> None:
        """Remove ``directory`` if it is empty (a stray temporary file keeps it)."""
        try:
            directory.rmdir()
        except FileNotFoundError:
            pass
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise

    def sync(self) -> None:
        """Make what was written durable: the directories' entries (files are synced already),
        or everything at once after a full regeneration."""
        if not self.durable:
            os.sync()
        else:
            for directory in self._touched_dirs:
                try:
                    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
                except FileNotFoundError:
                    continue
                try:
                    os.fsync(descriptor)
                finally:
                    os.close(descriptor)
        self._touched_dirs.clear()

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One writer at a time (the publisher of ``up`` and a ``wheelfarm write``)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- wheels ----------------------------------------------------------------------------

    def withdraw(self, name: str, filename: str) -> bool:
        """Move a published wheel out of the tree (kept, in case it is published again)."""
        source = self.files / name / filename
        if not source.exists():
            return False
        target = self.withdrawn / name / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        self._touched_dirs.add(str(source.parent))
        return True

    def restore(self, name: str, filename: str) -> bool:
        """Bring a withdrawn wheel back into the tree, if we have it."""
        source = self.withdrawn / name / filename
        target = self.files / name / filename
        if not source.exists():
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except FileNotFoundError:
            return False
        except FileExistsError:
            pass
        source.unlink(missing_ok=True)
        self._touched_dirs.add(str(target.parent))
        return True


_NO_ATIME = getattr(os, "O_NOATIME", 0)


def _open_to_compare(path: str) -> int:
    """Open a page to compare it, without touching its access time where we may: a regeneration
    reads every page, and the first read after a write would otherwise dirty every inode."""
    if _NO_ATIME:
        try:
            return os.open(path, os.O_RDONLY | _NO_ATIME)
        except PermissionError:  # O_NOATIME needs the file's owner (or CAP_FOWNER)
            pass
    return os.open(path, os.O_RDONLY)


def _entries(directory: Path | str) -> set[str]:
    try:
        return set(os.listdir(directory))
    except FileNotFoundError:
        return set()


class Blobs:
    """Reads the bytes only some writes need: METADATA files and build logs."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def metadata(self, filenames: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for part in chunked(filenames):
            rows = self.connection.execute(
                select(build_files.c.filename, build_files.c.metadata).where(
                    build_files.c.filename.in_(part)
                )
            )
            found.update({name: data for name, data in rows if data is not None})
        return found

    def logs(self, ids: Sequence[int]) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        for part in chunked(ids):
            rows = self.connection.execute(
                select(builds.c.id, builds.c.log).where(
                    builds.c.id.in_(part), builds.c.log.is_not(None)
                )
            )
            for build_id, log in rows:
                try:
                    found[build_id] = zlib.decompress(log)
                except zlib.error:
                    found[build_id] = b"[the stored log is damaged and cannot be shown]\n"
        return found


@dataclass(frozen=True)
class Existing:
    """What a full regeneration found in the tree as it began, listed once rather than once per
    project. Each project's writes touch only its own entries, so the lists stay true."""

    logs: frozenset[str]  # file names under logs/
    withdrawn: frozenset[str]  # projects with wheels kept in the withdrawn directory

    @classmethod
    def of(cls, tree: Tree) -> Existing:
        return cls(frozenset(_entries(tree.logs)), frozenset(_entries(tree.withdrawn)))


def _log_name(build_id: int) -> str:
    return f"{int(build_id)}.txt"


def write_project(
    tree: Tree,
    publication: Publication,
    blobs: Blobs,
    *,
    existing: Existing | None = None,
    report: Report | None = None,
) -> Report:
    """Bring one project's files in line with its publication (or take them all down).

    What it did is added to ``report`` (a whole chunk's, say) and returned; a new one if None.
    """
    name = publication.name
    if report is None:
        report = Report()
    report.projects += 1
    if not publishable_name(name):
        return report  # never a path: nothing of it was ever written
    before = report.written + report.removed
    project = publication.project
    if project is None:
        _take_down(tree, publication, report)
    else:
        _write_live(tree, project, publication, blobs, existing, report)
    if report.written + report.removed != before:
        report.changed.append(name)
    return report


def _take_down(tree: Tree, publication: Publication, report: Report) -> None:
    name = publication.name
    for path in (
        tree.simple / name / "index.html",
        tree.simple / name / "index.json",
        tree.project / name / "json" / "index.json",
        tree.project / name / "index.html",
        tree.badges / f"{name}.svg",
    ):
        report.removed += tree.remove(path)
    for directory in (tree.simple / name, tree.project / name / "json", tree.project / name):
        tree.prune(directory)
    for filename in publication.withdrawn:
        report.removed += tree.withdraw(name, filename)
    directory = tree.files / name
    for entry in _entries(directory):
        if entry.endswith(".metadata"):
            report.removed += tree.remove(directory / entry)
    tree.prune(directory)
    for build_id in publication.logs:
        report.removed += tree.remove(tree.logs / _log_name(build_id))


def _write_live(
    tree: Tree,
    project: ProjectIndex,
    publication: Publication,
    blobs: Blobs,
    existing: Existing | None,
    report: Report,
) -> None:
    name = project.name
    directory = f"{tree.files}/{name}"  # strings, not Paths: this runs for every project
    present = _entries(directory)
    report.releases += len(project.releases)
    for filename in publication.withdrawn:
        if filename in present:
            report.removed += tree.withdraw(name, filename)
    published = project.files
    report.wheels += len(published)
    wanted_metadata = {f"{w.filename}.metadata" for w in published if w.metadata_sha256}
    for entry in present - wanted_metadata:
        if entry.endswith(".metadata"):
            report.removed += tree.remove(Path(directory, entry))
    if existing is None or name in existing.withdrawn:  # wheels may be kept to bring back
        absent_wheels = [w.filename for w in published if w.filename not in present]
        kept = _entries(tree.withdrawn / name) if absent_wheels else set()
        for filename in absent_wheels:
            if filename in kept and tree.restore(name, filename):
                report.written += 1
    missing = [entry.removesuffix(".metadata") for entry in sorted(wanted_metadata - present)]
    if missing:
        for filename, data in blobs.metadata(missing).items():
            report.written += tree.put(f"{directory}/{filename}.metadata", data)
    simple_dir, project_dir = f"{tree.simple}/{name}", f"{tree.project}/{name}"
    outputs = (
        (f"{simple_dir}/index.html", simple.project_html(project)),
        (f"{simple_dir}/index.json", simple.project_json(project)),
        (f"{project_dir}/index.html", site_pages.render_project_page(project)),
        (f"{project_dir}/json/index.json", site_pages.render_project_json(project)),
        (f"{tree.badges}/{name}.svg", site_pages.render_badge(project)),
    )
    for path, data in outputs:
        report.written += tree.put(path, data)
    if existing is None:
        absent = [i for i in publication.logs if not (tree.logs / _log_name(i)).exists()]
    else:
        absent = [i for i in publication.logs if _log_name(i) not in existing.logs]
    if absent:
        for build_id, text in blobs.logs(absent).items():
            report.written += tree.put(tree.logs / _log_name(build_id), text)


_SITEMAP_PART = re.compile(r"sitemap-[0-9]+\.xml")


def write_site(tree: Tree, site: SiteIndex, base_url: str) -> Report:
    """The site-wide files: the simple root, home, search, packages.json, sitemap, 404, assets."""
    report = write_listings(tree, site, base_url)
    report.add(write_home(tree, site))
    return report


def write_home(tree: Tree, site: SiteIndex) -> Report:
    """The home page, the one site page with counts over every project."""
    return Report(
        site=True, written=tree.put(tree.root / "index.html", site_pages.render_home(site))
    )


def write_listings(tree: Tree, site: SiteIndex, base_url: str) -> Report:
    """Every site-wide file but the home page: these need the project list, not the counts."""
    report = Report(site=True)
    outputs: list[tuple[Path, bytes]] = [
        (tree.simple / "index.html", simple.root_html(site)),
        (tree.simple / "index.json", simple.root_json(site)),
        (tree.root / "search" / "index.html", site_pages.render_search_page(site)),
        (tree.root / "packages.json", site_pages.render_packages_json(site)),
        (tree.root / "404.html", site_pages.render_not_found()),
    ]
    sitemaps = site_pages.render_sitemap(site, base_url)
    outputs.extend((tree.root / name, data) for name, data in sitemaps.items())
    assets = site_pages.static_files()
    outputs.extend((tree.static / relative, data) for relative, data in assets.items())
    for path, data in outputs:
        report.written += tree.put(path, data)
    for entry in _entries(tree.root):
        if _SITEMAP_PART.fullmatch(entry) and entry not in sitemaps:
            report.removed += tree.remove(tree.root / entry)
    for entry in _entries(tree.static):
        if not entry.startswith(".") and entry not in assets and (tree.static / entry).is_file():
            report.removed += tree.remove(tree.static / entry)
    return report


@dataclass
class SiteClock:
    """When the site-wide pages were last written: their counts refresh at most this often."""

    refresh_seconds: float = 300.0
    written_at: float = 0.0

    def due(self, now: float) -> bool:
        return now - self.written_at >= self.refresh_seconds


def publish_dirty(
    engine: Engine,
    tree: Tree,
    *,
    upstream_simple_url: str,
    base_url: str,
    clock: SiteClock | None = None,
    limit: int = 10 * CHUNK,
) -> Report:
    """Write the projects marked changed, and the site pages if what they list changed.

    The site pages are also rewritten when a project changed and the counts on them are older
    than ``clock.refresh_seconds``. Dirty marks are cleared only for projects whose serial did
    not move while they were written.
    """
    report = Report()
    with tree.lock():
        while True:
            with engine.connect() as connection:
                dirty = dirty_projects(connection, limit=limit)
                if not dirty:
                    break
                publications = load_publications(
                    connection, list(dirty), upstream_simple_url=upstream_simple_url
                )
                blobs = Blobs(connection)
                listing_changed = False
                for name in sorted(publications):
                    publication = publications[name]
                    report.add(write_project(tree, publication, blobs))
                    listing_changed |= publication.listed != publication.listing
                now = time.time()
                if listing_changed or (clock is not None and clock.due(now)):
                    report.add(write_site(tree, load_site(connection), base_url))
                    if clock is not None:
                        clock.written_at = now
            tree.sync()
            with engine.begin() as connection:
                mark_written(
                    connection,
                    [(p.name, p.serial, p.listing) for p in publications.values()],
                )
            if len(dirty) < limit:
                break
    return report


def _tree_names(tree: Tree) -> set[str]:
    """Every project name that has something in the tree."""
    try:
        with os.scandir(tree.simple) as entries:  # the entry types come with the listing
            names = {entry.name for entry in entries if entry.is_dir(follow_symlinks=False)}
    except FileNotFoundError:
        names = set()
    names |= _entries(tree.project)
    names |= {e for e in _entries(tree.files) if not e.startswith(".")}
    names |= {e[: -len(".svg")] for e in _entries(tree.badges) if e.endswith(".svg")}
    return {name for name in names if publishable_name(name)}


def write_all(
    engine: Engine,
    tree: Tree,
    *,
    upstream_simple_url: str,
    base_url: str,
    progress: Progress | None = None,
    workers: int | None = None,
) -> Report:
    """Regenerate the whole tree: every live project, then the site pages.

    Projects that have files in the tree but are no longer live (or no longer exist) are taken
    down. Only files whose bytes differ are replaced. Chunks of projects are shared among
    ``workers`` processes (by default one per core when there are several chunks): loading and
    rendering are CPU-bound, and each chunk's files are disjoint from every other chunk's.
    """
    report = Report()
    durable, tree.durable = tree.durable, False
    collecting = gc.isenabled()
    gc.disable()  # millions of short-lived acyclic objects: collections would cost more than all
    try:
        with tree.lock():
            with engine.connect() as connection:
                live = live_project_names(connection)
                target_names = target_names_of(connection)
            job = _Job(
                _engine_url(engine), tree.root, tree.withdrawn, upstream_simple_url, target_names
            )
            existing = Existing.of(tree)
            if workers is None:
                chunk_count = -(-len(live) // CHUNK)
                workers = min(os.cpu_count() or 1, chunk_count // 2, _MAX_WORKERS)
            parallel = workers >= 2 and job.url is not None
            with (
                _chunk_writer(engine, tree, job, existing, workers) as write,
                ThreadPoolExecutor(1) as background,
            ):
                with engine.connect() as connection:
                    known = set(live) | set(dirty_projects(connection))
                ordered = sorted(known)
                # Given out at once: workers start on them as soon as they have imported.
                written = write(chunked(ordered), True)
                # While the workers write the projects, this process writes the site's lists
                # (not when it writes the projects itself: its store may be one connection)
                # and lists the tree for projects it still has but the store does not list.
                listing = (
                    background.submit(_write_listings, engine, tree, base_url) if parallel else None
                )
                stale = sorted(_tree_names(tree) - known)
                if stale:
                    written = itertools.chain(written, write(chunked(stale), False))
                done = 0
                for chunk_report, marks in written:
                    report.add(chunk_report)
                    _record(engine, marks)
                    done += chunk_report.projects
                    if progress is not None:
                        progress(done, len(ordered) + len(stale))
            if listing is not None:
                listing_report, site = listing.result()
            else:
                listing_report, site = _write_listings(engine, tree, base_url)
            with engine.connect() as connection:
                published = (report.releases, report.wheels)
                site.counts = site_counts(connection, site, published)
            report.add(listing_report)
            report.add(write_home(tree, site))
            if report.written or report.removed:
                # Only then: a sync also writes back what reading the tree dirtied (the
                # access times of directories listed for the first time since they changed).
                tree.sync()
    finally:
        tree.durable = durable
        if collecting:
            gc.enable()
    return report


def _write_listings(engine: Engine, tree: Tree, base_url: str) -> tuple[Report, SiteIndex]:
    with engine.connect() as connection:
        site = load_listing(connection)
    return write_listings(tree, site, base_url), site


_MAX_WORKERS = 8
Marks = list[tuple[str, int, str | None]]


@dataclass(frozen=True)
class _Job:
    """What a worker process needs to write chunks: picklable, so workers can be spawned."""

    url: str | None  # None: the store cannot be opened twice (in-memory SQLite)
    root: Path
    withdrawn: Path
    upstream_simple_url: str
    target_names: tuple[str, ...]


def _engine_url(engine: Engine) -> str | None:
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return None
    return url.render_as_string(hide_password=False)


def _write_chunk(
    connection: Connection, tree: Tree, job: _Job, chunk: list[str], existing: Existing, dense: bool
) -> tuple[Report, Marks]:
    report = Report()
    publications = load_publications(
        connection,
        chunk,
        upstream_simple_url=job.upstream_simple_url,
        target_names=job.target_names,
        dense=dense,
    )
    blobs = Blobs(connection)
    for name in chunk:
        write_project(tree, publications[name], blobs, existing=existing, report=report)
    marks = [(p.name, p.serial, p.listing) for p in publications.values() if p.to_record]
    return report, marks


ChunkWriter = Callable[[list[list[str]], bool], Iterator[tuple[Report, Marks]]]
"""Writes chunks of sorted names, ``dense`` when each is every live name of its range."""


@contextmanager
def _chunk_writer(
    engine: Engine, tree: Tree, job: _Job, existing: Existing, workers: int
) -> Iterator[ChunkWriter]:
    """Writes chunks, yielding each one's report and marks in order: here, or in ``workers``
    spawned processes, started at once so that they import while the caller gets the work ready."""
    if workers < 2 or job.url is None:

        def write_here(chunks: list[list[str]], dense: bool) -> Iterator[tuple[Report, Marks]]:
            with engine.connect() as connection:
                for chunk in chunks:
                    yield _write_chunk(connection, tree, job, chunk, existing, dense)

        yield write_here
        return
    # Spawned, not forked: the process that asks (wheelfarm up) runs threads.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start_worker, initargs=(job, existing)
    ) as pool:
        for _ in range(workers):
            pool.submit(_started)  # each submission starts a worker, if none is idle

        def write_there(chunks: list[list[str]], dense: bool) -> Iterator[tuple[Report, Marks]]:
            return pool.map(_worker_chunk, chunks, [dense] * len(chunks))

        yield write_there


def _started() -> None:
    """A task that does nothing: submitting it starts a worker process."""


_worker: tuple[Engine, Tree, _Job, Existing] | None = None


def _start_worker(job: _Job, existing: Existing) -> None:
    global _worker
    assert job.url is not None
    die_with_parent()  # a killed write --all leaves no worker writing the tree
    gc.disable()
    tree = Tree(job.root, job.withdrawn, durable=False)  # the parent syncs once at the end
    _worker = (create_store_engine(job.url), tree, job, existing)


def _worker_chunk(chunk: list[str], dense: bool) -> tuple[Report, Marks]:
    assert _worker is not None
    engine, tree, job, existing = _worker
    with engine.connect() as connection:
        return _write_chunk(connection, tree, job, chunk, existing, dense)


def _record(engine: Engine, marks: Marks) -> None:
    if not marks:
        return  # nothing was dirty and no listing changed: no transaction at all
    with engine.begin() as connection:
        mark_written(connection, marks)
