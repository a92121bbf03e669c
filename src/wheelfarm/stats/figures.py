"""The figures of the ``/stats/`` page and ``/stats.json``: one query per function, typed rows.

Everything but the build figures reads ``stats_daily`` (kept for good; bots are counted apart
and never here). Days are whole UTC days in days since 1970-01-01; months are ``YYYY-MM``.
:func:`load_figures` gathers them into one :class:`StatsFigures`, which the publisher renders
(:mod:`wheelfarm.publish.stats_page`) without touching the store again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, case, func, select

from wheelfarm.stats.report import SHARE_DIMENSIONS, missed_projects, top_projects
from wheelfarm.store.schema import build_files, builds, stats_daily

__all__ = [
    "DAILY_DAYS",
    "SHARE_DAYS",
    "DayCount",
    "ShareRow",
    "StatsFigures",
    "TargetBuilds",
    "TimeSaved",
    "day_text",
    "load_figures",
    "month_of",
    "read_builds_per_target",
    "read_downloads_by_day",
    "read_share_rows",
    "read_time_saved",
]

DAILY_DAYS = 90  # the downloads-per-day plot: today and the 89 days before
SHARE_DAYS = 365  # shares over time: per month, over about a year
_EPOCH = date(1970, 1, 1)

_d = stats_daily.c
_DOWNLOADS = (_d.kind == "download", _d.dimension == "total")


def day_text(day: int) -> str:
    """A day number as ``YYYY-MM-DD``."""
    return (_EPOCH + timedelta(days=day)).isoformat()


def month_of(day: int) -> str:
    """A day number's month, ``YYYY-MM``."""
    return day_text(day)[:7]


class DayCount(NamedTuple):
    day: int
    downloads: int


def read_downloads_by_day(connection: Connection) -> list[DayCount]:
    """Downloads of every day that has any, oldest first."""
    statement = select(_d.day, func.sum(_d.hits)).where(*_DOWNLOADS).group_by(_d.day)
    rows = connection.execute(statement.order_by(_d.day))
    return [DayCount(int(day), int(hits)) for day, hits in rows]


class ShareRow(NamedTuple):
    day: int
    dimension: str  # one of SHARE_DIMENSIONS
    value: str
    downloads: int


def read_share_rows(connection: Connection, since: int) -> list[ShareRow]:
    """Downloads per day by installer, Python, distro and CPU, from day ``since`` on."""
    statement = (
        select(_d.day, _d.dimension, _d.value, func.sum(_d.hits))
        .where(_d.kind == "download", _d.dimension.in_(SHARE_DIMENSIONS), _d.day >= since)
        .group_by(_d.day, _d.dimension, _d.value)
    )
    return [
        ShareRow(int(a), str(b), str(c), int(n)) for a, b, c, n in connection.execute(statement)
    ]


class TimeSaved(NamedTuple):
    """Build time the downloads saved their users: each downloaded wheel's build duration, once
    per download, in seconds."""

    last_30_days: float
    total: float


def read_time_saved(connection: Connection, today: int) -> TimeSaved:
    """Every download of a wheel built here counts its build's duration (an imported wheel, with
    no duration, counts nothing)."""
    seconds = _d.hits * builds.c.duration
    recent = func.sum(case((_d.day > today - 30, seconds), else_=0.0))
    statement = (
        select(func.coalesce(recent, 0.0), func.coalesce(func.sum(seconds), 0.0))
        .select_from(
            stats_daily.join(build_files, build_files.c.filename == _d.value).join(
                builds, builds.c.id == build_files.c.build_id
            )
        )
        .where(_d.kind == "download", _d.dimension == "file", builds.c.duration.is_not(None))
    )
    recent_seconds, total_seconds = connection.execute(statement).one()
    return TimeSaved(float(recent_seconds), float(total_seconds))


class TargetBuilds(NamedTuple):
    """The build attempts of one target: built, failed, and the others (building, deferred)."""

    target: str
    built: int
    failed: int
    other: int

    @property
    def success_rate(self) -> float | None:
        """Built over finished (built or failed); None before any finished."""
        done = self.built + self.failed
        return self.built / done if done else None


def read_builds_per_target(connection: Connection) -> list[TargetBuilds]:
    """Every target's build attempts by outcome, by target name."""
    b = builds.c
    built = func.sum(case((b.status == "built", 1), else_=0))
    failed = func.sum(case((b.status == "failed", 1), else_=0))
    statement = select(b.target, built, failed, func.count()).group_by(b.target).order_by(b.target)
    return [
        TargetBuilds(str(t), int(ok), int(bad), int(n) - int(ok) - int(bad))
        for t, ok, bad, n in connection.execute(statement)
    ]


@dataclass(slots=True)
class StatsFigures:
    """Everything ``/stats/`` shows; :meth:`as_json` is ``/stats.json``."""

    today: int
    downloads_total: int
    downloads_30d: int
    daily: list[DayCount]  # the last DAILY_DAYS days, today last, zeros included
    monthly: list[tuple[str, int]]  # (month, downloads), every month since the first download
    top_30d: list[dict[str, Any]]  # name, downloads_30d, downloads_total
    top_all_time: list[dict[str, Any]]
    missed: list[dict[str, Any]]  # name, searches_30d: searched, not downloaded, in 30 days
    # Per dimension, per month (oldest first): downloads by value.
    shares: dict[str, list[tuple[str, dict[str, int]]]] = field(default_factory=dict)
    time_saved: TimeSaved = field(default_factory=lambda: TimeSaved(0.0, 0.0))
    targets: list[TargetBuilds] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "today": day_text(self.today),
            "downloads_total": self.downloads_total,
            "downloads_30d": self.downloads_30d,
            "downloads_per_day": [
                {"day": day_text(d.day), "downloads": d.downloads} for d in self.daily
            ],
            "downloads_per_month": [{"month": m, "downloads": n} for m, n in self.monthly],
            "top_projects_30d": self.top_30d,
            "top_projects_all_time": self.top_all_time,
            "missed_projects": self.missed,
            "shares": {
                dimension: [{"month": m, "downloads": values} for m, values in months]
                for dimension, months in self.shares.items()
            },
            "time_saved_seconds": {
                "last_30_days": round(self.time_saved.last_30_days, 1),
                "total": round(self.time_saved.total, 1),
            },
            "builds": [
                {
                    "target": t.target,
                    "built": t.built,
                    "failed": t.failed,
                    "other": t.other,
                    "success_rate": None if t.success_rate is None else round(t.success_rate, 4),
                }
                for t in self.targets
            ],
        }


def _months(rows: list[DayCount]) -> list[tuple[str, int]]:
    """Downloads per month from the first month with any to this one, empty months included."""
    if not rows:
        return []
    found: dict[str, int] = {}
    for row in rows:
        month = month_of(row.day)
        found[month] = found.get(month, 0) + row.downloads
    first, last = min(found), max(found)
    months: list[tuple[str, int]] = []
    year, number = int(first[:4]), int(first[5:])
    while f"{year:04}-{number:02}" <= last:
        month = f"{year:04}-{number:02}"
        months.append((month, found.get(month, 0)))
        year, number = (year + 1, 1) if number == 12 else (year, number + 1)
    return months


def _shares(rows: list[ShareRow]) -> dict[str, list[tuple[str, dict[str, int]]]]:
    per: dict[str, dict[str, dict[str, int]]] = {d: {} for d in SHARE_DIMENSIONS}
    for row in rows:
        months = per[row.dimension]
        values = months.setdefault(month_of(row.day), {})
        values[row.value] = values.get(row.value, 0) + row.downloads
    return {
        dimension: [
            (month, dict(sorted(values.items(), key=lambda item: (-item[1], item[0]))))
            for month, values in sorted(months.items())
        ]
        for dimension, months in per.items()
    }


def load_figures(connection: Connection, today: int, limit: int = 20) -> StatsFigures:
    """Every figure of ``/stats/`` as of ``today`` (a day number, UTC)."""
    by_day = read_downloads_by_day(connection)
    counts = {row.day: row.downloads for row in by_day}
    first = today - DAILY_DAYS + 1
    daily = [DayCount(day, counts.get(day, 0)) for day in range(first, today + 1)]
    return StatsFigures(
        today=today,
        downloads_total=sum(row.downloads for row in by_day),
        downloads_30d=sum(row.downloads for row in by_day if today - 30 < row.day <= today),
        daily=daily,
        monthly=_months([row for row in by_day if row.day <= today]),
        top_30d=[p for p in top_projects(connection, today, limit) if p["downloads_30d"]],
        top_all_time=top_projects(connection, today, limit, all_time=True),
        missed=missed_projects(connection, today, limit),
        shares=_shares(read_share_rows(connection, today - SHARE_DAYS + 1)),
        time_saved=read_time_saved(connection, today),
        targets=read_builds_per_target(connection),
    )
