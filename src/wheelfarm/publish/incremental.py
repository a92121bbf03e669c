"""Publish what changed: the projects marked dirty, and the site pages when their list changed.

This is what ``wheelfarm write`` and the publisher of ``wheelfarm up`` (about once a second) run.
Every file is fsynced, and dirty marks are cleared only after, for the serials that were read,
so a change that lands while its project is written is written again by the next round.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Engine

from wheelfarm.publish.blobs import Blobs
from wheelfarm.publish.loader import load_publications, load_site
from wheelfarm.publish.project_writer import write_project
from wheelfarm.publish.queries import CHUNK
from wheelfarm.publish.site_writer import write_site
from wheelfarm.publish.tree import Tree
from wheelfarm.publish.write_report import WriteReport
from wheelfarm.store.marks import WrittenMark, dirty_projects, mark_written

__all__ = ["SiteClock", "publish_dirty"]


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
) -> WriteReport:
    """Write the projects marked changed, and the site pages if what they list changed.

    The site pages are also rewritten when a project changed and the counts on them are older
    than ``clock.refresh_seconds``. Dirty marks are cleared only for projects whose serial did
    not move while they were written.
    """
    report = WriteReport()
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
                    [WrittenMark(p.name, p.serial, p.listing) for p in publications.values()],
                )
            if len(dirty) < limit:
                break
    return report
