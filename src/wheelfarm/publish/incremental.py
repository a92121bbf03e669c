"""Publish what changed: the projects marked dirty, then the pages that sum them up.

This is what ``wheelfarm write`` and the publisher of ``wheelfarm up`` (about once a second) run.
Every file is fsynced, and dirty marks are cleared only after, for the serials that were read,
so a change that lands while its project is written is written again by the next round.

The simple root lists each project's serial and the home page counts every wheel, so both are
rewritten whenever a project was published: at once by ``wheelfarm write``; by ``up``'s
publisher at most every :attr:`SiteClock.refresh_seconds` (5 s), which coalesces a busy farm's
changes while keeping the root within a few seconds of the project pages.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Engine

from wheelfarm.publish.blobs import Blobs
from wheelfarm.publish.loader import load_publications, load_site
from wheelfarm.publish.project_writer import write_project
from wheelfarm.publish.queries import CHUNK
from wheelfarm.publish.site_writer import write_roots, write_site
from wheelfarm.publish.tree import Tree
from wheelfarm.publish.write_report import WriteReport
from wheelfarm.store.marks import WrittenMark, dirty_projects, mark_written

__all__ = ["SiteClock", "publish_dirty"]


@dataclass
class SiteClock:
    """When the summing-up pages (simple root, home) were last written, and whether a project
    was published since: they are rewritten at most every ``refresh_seconds``."""

    refresh_seconds: float = 5.0
    written_at: float = 0.0
    pending: bool = False

    def due(self, now: float) -> bool:
        return self.pending and now - self.written_at >= self.refresh_seconds


def publish_dirty(
    engine: Engine,
    tree: Tree,
    *,
    upstream_simple_url: str,
    base_url: str,
    clock: SiteClock | None = None,
    limit: int = 10 * CHUNK,
) -> WriteReport:
    """Write the projects marked changed, then the site pages that show them.

    Every site page is rewritten when what they list changed; otherwise, when a project was
    published, the simple root and the home page (serials, counts): at once without a
    ``clock``, else when the clock says so (also on a later call with nothing dirty). Dirty
    marks are cleared only for projects whose serial did not move while they were written.
    """
    report = WriteReport()
    clock = clock if clock is not None else SiteClock(refresh_seconds=0.0)
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
                clock.pending = True
                if listing_changed:
                    report.add(write_site(tree, load_site(connection), base_url))
                    clock.pending, clock.written_at = False, time.time()
            tree.sync()
            with engine.begin() as connection:
                mark_written(
                    connection,
                    [WrittenMark(p.name, p.serial, p.listing) for p in publications.values()],
                )
            if len(dirty) < limit:
                break
        now = time.time()
        if clock.due(now):
            with engine.connect() as connection:
                report.add(write_roots(tree, load_site(connection)))
            tree.sync()
            clock.pending, clock.written_at = False, now
    return report
