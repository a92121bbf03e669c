"""Keep the published download figures current while ``wheelfarm up`` runs.

Pages are static, and a download changes no project's serial, so the incremental writer never
sees it. Two rounds of ``up``'s publisher take care of the figures instead:

- :func:`refresh_downloads`, every ``stats_refresh_seconds`` (2 s): the projects downloaded
  today or yesterday whose (30 days, all time) figures differ from what this publisher last
  wrote get their pages written again (project page and JSON; only changed files are
  replaced). A round that finds nothing moved costs two small queries (the projects
  downloaded since yesterday, their two figures), so it can run often. On the first round of
  a new day it looks at every project downloaded in the last 31 days, whose 30-day figure and
  plot slid with the day. Counts added for older days (an access log ingested late) show at
  the next full write (every start of ``up``, ``wheelfarm write --all``).
- :func:`write_statistics`, every ``stats_page_seconds`` (300 s): ``/stats/``, its plots and
  ``/stats.json``, and ``/packages.json`` with every project's downloads. The plots are drawn
  before the tree's lock is taken, so the writers never wait on matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine

from wheelfarm.publish.blobs import Blobs
from wheelfarm.publish.download_queries import read_recent_downloaders, read_site_downloads
from wheelfarm.publish.loader import load_listing, load_publications, today_utc
from wheelfarm.publish.project_writer import write_project
from wheelfarm.publish.queries import chunked
from wheelfarm.publish.site_pages import render_packages_json
from wheelfarm.publish.stats_page import render_stats
from wheelfarm.publish.tree import Tree
from wheelfarm.publish.values import DOWNLOAD_DAYS
from wheelfarm.publish.write_report import WriteReport
from wheelfarm.stats.figures import load_figures

__all__ = ["DownloadRefresh", "refresh_downloads", "write_statistics"]


@dataclass
class DownloadRefresh:
    """What the publisher last wrote of each project's downloads, and on which day it looked."""

    shown: dict[str, tuple[int, int]] = field(default_factory=dict)  # (30 days, all time)
    day: int | None = None


def refresh_downloads(
    engine: Engine,
    tree: Tree,
    refresh: DownloadRefresh,
    *,
    upstream_simple_url: str,
    today: int | None = None,
) -> WriteReport:
    """Write again the pages of the projects whose download figures moved (module docstring)."""
    day = today_utc() if today is None else today
    since = day - 1 if refresh.day == day else day - DOWNLOAD_DAYS - 1
    report = WriteReport()
    with engine.connect() as connection:
        candidates = read_recent_downloaders(connection, since)
        counted = [
            row
            for names in chunked(candidates)
            for row in read_site_downloads(connection, day, names)
        ]
        moved = {
            row.project: (row.last_30_days, row.total)
            for row in counted
            if refresh.day != day or refresh.shown.get(row.project) != (row.last_30_days, row.total)
        }
        if moved:
            publications = load_publications(
                connection, list(moved), upstream_simple_url=upstream_simple_url, today=day
            )
            blobs = Blobs(connection)
            with tree.lock():
                for name, figures in sorted(moved.items()):
                    publication = publications[name]
                    if publication.project is not None:
                        write_project(tree, publication, blobs, report=report)
                    refresh.shown[name] = figures
                tree.sync()
    refresh.day = day
    return report


def write_statistics(engine: Engine, tree: Tree, *, today: int | None = None) -> WriteReport:
    """Write ``/stats/``, its plots, ``/stats.json`` and ``/packages.json`` (module docstring)."""
    day = today_utc() if today is None else today
    with engine.connect() as connection:
        figures = load_figures(connection, day)
        site = load_listing(connection, today=day)
    files = render_stats(figures)
    files["packages.json"] = render_packages_json(site)
    report = WriteReport(site=True)
    with tree.lock():
        # The plots first, then the page that shows them.
        for path in sorted(files, key=lambda p: (not p.endswith(".svg"), p)):
            report.written += tree.put(tree.root / path, files[path])
        tree.sync()
    return report
