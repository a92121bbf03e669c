"""Regenerate the whole published tree (``wheelfarm write --all``, and every start of ``up``).

Every live project is written, projects that only the tree still has are taken down, then the
site pages. It is the heaviest thing the farm does, so it is arranged for speed: chunks of
projects go to worker processes (:mod:`~wheelfarm.publish.chunk_workers`) while this process
writes the site's lists, garbage collection is off for the run, the tree's listings are read
once (:class:`~wheelfarm.publish.existing.Existing`), and the file systems are synced once at
the end rather than file by file.
"""

from __future__ import annotations

import gc
import itertools
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from sqlalchemy import Engine

from wheelfarm.farm.unserved import UNSERVED_SILENCE_SECONDS, refresh_unserved
from wheelfarm.publish.chunk_workers import MAX_WORKERS, ChunkJob, ChunkResult, chunk_writer, record
from wheelfarm.publish.existing import Existing, tree_names
from wheelfarm.publish.loader import load_listing, site_counts
from wheelfarm.publish.queries import CHUNK, PublishedCounts, chunked, target_names_of
from wheelfarm.publish.site_writer import write_home, write_listings
from wheelfarm.publish.tree import Tree
from wheelfarm.publish.values import SiteIndex
from wheelfarm.publish.write_report import WriteReport
from wheelfarm.store.marks import dirty_projects
from wheelfarm.store.views import live_project_names

__all__ = ["Progress", "write_all"]

Progress = Callable[[int, int], None]
"""Called with (projects done, projects in all) after each chunk."""


def write_all(
    engine: Engine,
    tree: Tree,
    *,
    upstream_simple_url: str,
    base_url: str,
    progress: Progress | None = None,
    workers: int | None = None,
    unserved_silence_seconds: float = UNSERVED_SILENCE_SECONDS,
) -> WriteReport:
    """Regenerate the whole tree: every live project, then the site pages.

    The targets no builder has served for ``unserved_silence_seconds`` are looked for first,
    so the pages say which builds wait on them (:mod:`wheelfarm.farm.unserved`).

    Projects that have files in the tree but are no longer live (or no longer exist) are taken
    down. Only files whose bytes differ are replaced. Chunks of projects are shared among
    ``workers`` processes (by default one per core when there are several chunks): loading and
    rendering are CPU-bound, and each chunk's files are disjoint from every other chunk's.
    """
    with engine.begin() as connection:
        refresh_unserved(connection, now=time.time(), silence_seconds=unserved_silence_seconds)
    durable, tree.durable = tree.durable, False
    collecting = gc.isenabled()
    gc.disable()  # millions of short-lived acyclic objects: collections would cost more than all
    try:
        with tree.lock():
            return _regenerate(engine, tree, upstream_simple_url, base_url, progress, workers)
    finally:
        tree.durable = durable
        tree.siblings_complete = False
        if collecting:
            gc.enable()


def _regenerate(
    engine: Engine,
    tree: Tree,
    upstream_simple_url: str,
    base_url: str,
    progress: Progress | None,
    workers: int | None,
) -> WriteReport:
    with engine.connect() as connection:
        live = live_project_names(connection)
        target_names = target_names_of(connection)
    job = ChunkJob.of(engine, tree, upstream_simple_url, target_names)
    existing = Existing.of(tree)
    tree.siblings_complete = existing.siblings
    if workers is None:
        chunk_count = -(-len(live) // CHUNK)
        workers = min(os.cpu_count() or 1, chunk_count // 2, MAX_WORKERS)
    parallel = workers >= 2 and job.url is not None
    report = WriteReport()
    with (
        chunk_writer(engine, tree, job, existing, workers) as write,
        ThreadPoolExecutor(1) as background,
    ):
        with engine.connect() as connection:
            known = set(live) | set(dirty_projects(connection))
        ordered = sorted(known)
        # Given out at once: workers start on them as soon as they have imported.
        written = write(chunked(ordered), True)
        # While the workers write the projects, this process writes the site's lists (not when
        # it writes the projects itself: its store may be one connection) and lists the tree
        # for projects it still has but the store does not list.
        listing = background.submit(_write_listings, engine, tree, base_url) if parallel else None
        stale = sorted(tree_names(tree) - known)
        if stale:
            written = itertools.chain(written, write(chunked(stale), False))
        _gather(engine, written, report, progress, len(ordered) + len(stale))
    listed = listing.result() if listing is not None else _write_listings(engine, tree, base_url)
    with engine.connect() as connection:
        published = PublishedCounts(report.releases, report.wheels)
        listed.site.counts = site_counts(connection, listed.site, published)
    report.add(listed.report)
    report.add(write_home(tree, listed.site))
    if report.written or report.removed:
        # Only then: a sync also writes back what reading the tree dirtied (the access times
        # of directories listed for the first time since they changed).
        tree.sync()
    # Every page is written (and synced) or found unchanged now, each with its sibling: say
    # so, and the next regeneration need not look for them.
    tree.mark_siblings()
    return report


def _gather(
    engine: Engine,
    written: Iterable[ChunkResult],
    report: WriteReport,
    progress: Progress | None,
    total: int,
) -> None:
    """Add up the chunks' reports and record their marks, as each chunk comes back."""
    done = 0
    for chunk in written:
        report.add(chunk.report)
        record(engine, chunk.marks)
        done += chunk.report.projects
        if progress is not None:
            progress(done, total)


class _Listing(NamedTuple):
    report: WriteReport
    site: SiteIndex  # without its counts, which come once every project is written


def _write_listings(engine: Engine, tree: Tree, base_url: str) -> _Listing:
    with engine.connect() as connection:
        site = load_listing(connection)
    return _Listing(write_listings(tree, site, base_url), site)
