"""Publish what changed: the projects marked dirty, then the pages that sum them up.

This is what ``wheelfarm write`` and the publisher of ``wheelfarm up`` (about once a second) run.
Every file is fsynced, and dirty marks are cleared only after, for the serials that were read,
so a change that lands while its project is written is written again by the next round.

The simple root lists each project's serial and the home page counts every wheel, so both are
rewritten whenever a project was published: at once by ``wheelfarm write``; by ``up``'s
publisher at most every :attr:`SiteClock.refresh_seconds` (5 s), which coalesces a busy farm's
changes while keeping the root within a few seconds of the project pages. With such a clock the
roots are also never written in the round that made them stale, only from the next round on
(a second later): rewriting them reads every live project and counts every wheel (0.4 s at
20,000 projects, measured), which a lone change's own round should not wait for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from wheelfarm.farm.unserved import UNSERVED_SILENCE_SECONDS, refresh_unserved
from wheelfarm.publish.blobs import Blobs
from wheelfarm.publish.failures import PublishFailures
from wheelfarm.publish.loader import load_publications, load_site
from wheelfarm.publish.project_writer import write_project
from wheelfarm.publish.publication import Publication
from wheelfarm.publish.queries import CHUNK
from wheelfarm.publish.site_writer import write_roots, write_site
from wheelfarm.publish.tree import Tree
from wheelfarm.publish.write_report import WriteReport
from wheelfarm.store.marks import WrittenMark, dirty_projects, mark_written

__all__ = ["UNSERVED_SECONDS", "SiteClock", "publish_dirty"]


#: How often ``up``'s publisher looks for targets no builder serves: the silence allowed is in
#: minutes, and the look counts the pending jobs of every target.
UNSERVED_SECONDS = 30.0


@dataclass
class SiteClock:
    """When the summing-up pages (simple root, home) were last written, and whether a project
    was published since: they are rewritten at most every ``refresh_seconds``."""

    refresh_seconds: float = 5.0
    written_at: float = 0.0
    pending: bool = False
    unserved_at: float = 0.0  # when the targets no builder serves were last looked for

    def unserved_due(self, now: float) -> bool:
        """Whether to look for unserved targets again: every round without a refresh period
        (``wheelfarm write``), else at most every :data:`UNSERVED_SECONDS`."""
        return not self.refresh_seconds or now - self.unserved_at >= UNSERVED_SECONDS

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
    failures: PublishFailures | None = None,
    unserved_silence_seconds: float = UNSERVED_SILENCE_SECONDS,
) -> WriteReport:
    """Write the projects marked changed, then the site pages that show them.

    Every site page is rewritten when what they list changed; otherwise, when a project was
    published, the simple root and the home page (serials, counts): at once without a
    ``clock``, else when the clock says so (also on a later call with nothing dirty). Dirty
    marks are cleared only for projects whose serial did not move while they were written.

    A project that fails to load or render is left dirty, named in the report's ``failed`` and
    in ``failures`` (which says when to try it again); the others are published regardless.

    First, when the clock says so, the targets no builder has served for
    ``unserved_silence_seconds`` are looked for: a target that became unserved, or served
    again, marks the projects waiting for it (:func:`~wheelfarm.farm.unserved.refresh_unserved`).
    """
    report = WriteReport()
    clock = clock if clock is not None else SiteClock(refresh_seconds=0.0)
    _look_for_unserved(engine, clock, unserved_silence_seconds)
    stale_before = clock.pending or not clock.refresh_seconds
    failures = failures if failures is not None else PublishFailures()
    with tree.lock():
        while True:
            with engine.connect() as connection:
                waiting = failures.waiting(time.time())
                found = dirty_projects(connection, limit=limit + len(waiting))
                dirty = {name: serial for name, serial in found.items() if name not in waiting}
                if not dirty:
                    break
                publications = _load(connection, list(dirty), upstream_simple_url, failures, report)
                blobs = Blobs(connection)
                listing_changed = False
                for name in sorted(publications):
                    publication = publications[name]
                    try:
                        report.add(write_project(tree, publication, blobs))
                    except OSError:
                        raise  # the disk, not the project: the caller pauses
                    except Exception as error:  # this project's data: the others go on
                        report.failed[name] = failures.failed(name, error, time.time())
                        del publications[name]
                        continue
                    failures.succeeded(name)
                    listing_changed |= publication.listed != publication.listing
                clock.pending = True
                if listing_changed:
                    report.add(
                        write_site(tree, load_site(connection, with_unlisted=True), base_url)
                    )
                    clock.pending, clock.written_at = False, time.time()
            tree.sync()
            with engine.begin() as connection:
                mark_written(
                    connection,
                    [
                        WrittenMark(p.name, p.serial, p.listing, p.stale_logs)
                        for p in publications.values()
                    ],
                )
            if len(found) < limit + len(waiting):
                break
        now = time.time()
        if stale_before and clock.due(now):
            with engine.connect() as connection:
                report.add(write_roots(tree, load_site(connection, downloads=False)))
            tree.sync()
            clock.pending, clock.written_at = False, now
    return report


def _look_for_unserved(engine: Engine, clock: SiteClock, silence_seconds: float) -> None:
    """Flag the targets no builder serves, when the clock says it is time; a change marks the
    projects waiting for them, and the home page (which lists them) is due."""
    now = time.time()
    if not clock.unserved_due(now):
        return
    with engine.begin() as connection:
        if refresh_unserved(connection, now=now, silence_seconds=silence_seconds):
            clock.pending = True
    clock.unserved_at = now


def _load(
    connection: Connection,
    names: list[str],
    upstream_simple_url: str,
    failures: PublishFailures,
    report: WriteReport,
) -> dict[str, Publication]:
    """Load a chunk at once; if that fails, one project at a time, so only the bad ones fail."""
    try:
        return load_publications(connection, names, upstream_simple_url=upstream_simple_url)
    except OSError:
        raise
    except Exception:  # somewhere in the chunk: find which project, keep the rest
        connection.rollback()
    loaded: dict[str, Publication] = {}
    for name in names:
        try:
            loaded |= load_publications(connection, [name], upstream_simple_url=upstream_simple_url)
        except OSError:
            raise
        except Exception as error:
            connection.rollback()
            report.failed[name] = failures.failed(name, error, time.time())
    return loaded
