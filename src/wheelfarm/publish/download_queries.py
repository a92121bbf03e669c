"""The store reads behind the download figures of the published pages: one query per function.

The counts are ``stats_daily``'s (:mod:`wheelfarm.stats.record` writes them; bots are counted
apart and never here). They sit beside :mod:`wheelfarm.publish.queries` and follow its shape:
each query returns ``NamedTuple`` rows, and reads that load projects take an
:data:`~wheelfarm.publish.queries.Among`. "The last 30 days" is today (UTC) and the days before
it, :data:`~wheelfarm.publish.values.DOWNLOAD_DAYS` in all, as ``wheelfarm stats`` counts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import Connection, case, func, literal_column, select

from wheelfarm.publish.queries import Among
from wheelfarm.publish.values import DOWNLOAD_DAYS
from wheelfarm.store.schema import stats_daily

__all__ = [
    "OLDER",
    "DownloadRow",
    "SiteDownloadRow",
    "read_downloads",
    "read_recent_downloaders",
    "read_site_downloads",
]

OLDER = -1
"""The ``day`` of a :class:`DownloadRow` that sums every day before the plotted ones."""

_d = stats_daily.c
_DOWNLOADS = (_d.kind == "download", _d.dimension == "total")


class DownloadRow(NamedTuple):
    """A project's downloads on one of the plotted days, or (``day`` = :data:`OLDER`) on all the
    days before them together."""

    project: str
    day: int
    downloads: int


def read_downloads(connection: Connection, among: Among, today: int) -> list[DownloadRow]:
    """Each loaded project's downloads per plotted day, and before them in one row: so a
    project has at most 31 rows, whatever its age."""
    first = today - DOWNLOAD_DAYS + 1
    day = case((_d.day >= first, _d.day), else_=OLDER).label("plotted_day")
    statement = (
        select(_d.project, day, func.sum(_d.hits))
        .where(*_DOWNLOADS, among(_d.project))
        # By the label: a CASE with parameters repeated in GROUP BY is another expression to
        # PostgreSQL (its parameters are numbered apart).
        .group_by(_d.project, literal_column("plotted_day"))
    )
    return [DownloadRow(str(p), int(d), int(n)) for p, d, n in connection.execute(statement)]


class SiteDownloadRow(NamedTuple):
    """A project's downloads as ``packages.json`` lists them."""

    project: str
    last_30_days: int
    total: int


def read_site_downloads(
    connection: Connection, today: int, names: Sequence[str] | None = None
) -> list[SiteDownloadRow]:
    """Every project that has downloads (or those of ``names``): in the last 30 days, and in
    all."""
    recent = func.sum(case((_d.day > today - DOWNLOAD_DAYS, _d.hits), else_=0))
    statement = select(_d.project, recent, func.sum(_d.hits)).where(*_DOWNLOADS)
    if names is not None:
        statement = statement.where(_d.project.in_(list(names)))
    rows = connection.execute(statement.group_by(_d.project))
    return [SiteDownloadRow(str(p), int(r), int(t)) for p, r, t in rows]


def read_recent_downloaders(connection: Connection, since: int) -> list[str]:
    """The projects downloaded on day ``since`` or after: whose figures may have moved."""
    statement = select(_d.project).where(*_DOWNLOADS, _d.day >= since).distinct()
    return sorted(str(name) for name in connection.execute(statement).scalars())
