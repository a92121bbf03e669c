"""Read the counts back: the summary ``wheelfarm stats`` prints, and a project's downloads.

Everything here reads ``stats_daily`` (kept for good), so the figures do not change when raw
hits are pruned. Days are whole UTC days; "30 days" is today and the 29 days before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, and_, case, func, select

from wheelfarm.store.schema import stats_daily

__all__ = [
    "SHARE_DIMENSIONS",
    "Downloads",
    "missed_projects",
    "project_downloads",
    "shares",
    "summary",
    "top_projects",
]

SHARE_DIMENSIONS = ("installer", "python", "distro", "arch")

Downloads = tuple[int, int]  # (last 30 days, all time)

_d = stats_daily.c


def _since(today: int, days: int) -> Any:
    return _d.day > today - days


def _total(connection: Connection, kind: str, since: int | None) -> int:
    where = [_d.kind == kind, _d.dimension == "total"]
    if since is not None:
        where.append(_d.day > since)
    found = connection.execute(select(func.coalesce(func.sum(_d.hits), 0)).where(*where))
    return int(found.scalar_one())


def project_downloads(
    connection: Connection, names: Iterable[str], today: int
) -> dict[str, Downloads]:
    """(30 days, all time) downloads of each named project that has any; one query."""
    recent = func.sum(case((_since(today, 30), _d.hits), else_=0))
    rows = connection.execute(
        select(_d.project, recent, func.sum(_d.hits))
        .where(_d.kind == "download", _d.dimension == "total", _d.project.in_(list(names)))
        .group_by(_d.project)
    )
    return {row[0]: (int(row[1]), int(row[2])) for row in rows}


def shares(
    connection: Connection, today: int, days: int = 30, kind: str = "download"
) -> dict[str, dict[str, int]]:
    """Counts by installer, Python, distro and CPU over the last ``days`` days, largest first."""
    rows = connection.execute(
        select(_d.dimension, _d.value, func.sum(_d.hits))
        .where(_d.kind == kind, _d.dimension.in_(SHARE_DIMENSIONS), _since(today, days))
        .group_by(_d.dimension, _d.value)
    )
    found: dict[str, dict[str, int]] = {dimension: {} for dimension in SHARE_DIMENSIONS}
    for dimension, value, hits in rows:
        found[dimension][value] = int(hits)
    return {
        dimension: dict(sorted(values.items(), key=lambda item: (-item[1], item[0])))
        for dimension, values in found.items()
    }


def top_projects(
    connection: Connection, today: int, limit: int, *, all_time: bool = False
) -> list[dict[str, Any]]:
    """The most downloaded projects in the last 30 days (``all_time``: in all)."""
    recent = func.sum(case((_since(today, 30), _d.hits), else_=0)).label("recent")
    total = func.sum(_d.hits).label("total")
    order = (total.desc(), recent.desc()) if all_time else (recent.desc(), total.desc())
    rows = connection.execute(
        select(_d.project, recent, total)
        .where(_d.kind == "download", _d.dimension == "total")
        .group_by(_d.project)
        .order_by(*order, _d.project)
        .limit(limit)
    )
    return [{"name": n, "downloads_30d": int(r), "downloads_total": int(t)} for n, r, t in rows]


def missed_projects(connection: Connection, today: int, limit: int) -> list[dict[str, Any]]:
    """Projects installers asked for in the last 30 days that nobody downloaded in them."""
    downloaded = (
        select(_d.project)
        .where(_d.kind == "download", _d.dimension == "total", _since(today, 30))
        .distinct()
    )
    searches = func.sum(_d.hits).label("searches")
    rows = connection.execute(
        select(_d.project, searches)
        .where(
            and_(_d.kind == "search", _d.dimension == "total", _since(today, 30)),
            _d.project.not_in(downloaded),
        )
        .group_by(_d.project)
        .order_by(searches.desc(), _d.project)
        .limit(limit)
    )
    return [{"name": name, "searches_30d": int(count)} for name, count in rows]


def summary(connection: Connection, today: int, limit: int = 20) -> dict[str, Any]:
    """What ``wheelfarm stats --json`` prints."""
    return {
        "downloads_total": _total(connection, "download", None),
        "downloads_30d": _total(connection, "download", today - 30),
        "searches_30d": _total(connection, "search", today - 30),
        "page_views_30d": _total(connection, "page", today - 30),
        "json_hits_30d": _total(connection, "json", today - 30),
        "top_projects": top_projects(connection, today, limit),
        "missed_projects": missed_projects(connection, today, limit),
        "shares": shares(connection, today),
    }
