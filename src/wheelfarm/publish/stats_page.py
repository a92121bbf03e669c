"""The statistics page, ``/stats/``, its SVG plots and ``/stats.json``, from :class:`StatsFigures`.

Rendering is a pure function of the figures (:func:`render_stats`); the plots are drawn by
:mod:`wheelfarm.stats.plots` (matplotlib, imported only when a plot is drawn). ``up``'s
publisher writes them (:func:`wheelfarm.publish.stats_refresh.write_statistics`) every
``stats_page_seconds``; each file is replaced atomically and only when its bytes changed, so
nginx serving the tree sees whole files. The
page refers to each plot as ``<name>.svg?v=<hash>``: a changed plot gets a new URL.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

import orjson

from wheelfarm.publish.html import template
from wheelfarm.stats import plots
from wheelfarm.stats.figures import StatsFigures, day_text
from wheelfarm.stats.report import SHARE_DIMENSIONS

__all__ = ["SHARE_SERIES", "Plot", "render_stats"]

SHARE_SERIES = 6
"""Values a share plot shows apart (the most downloaded); the rest are one series, "other"."""

_SHARE_TITLES = {
    "installer": "Installers",
    "python": "Python versions",
    "distro": "Distros",
    "arch": "Architectures",
}


class Plot(NamedTuple):
    """One plot as the page shows it."""

    name: str  # its file is /stats/<name>.svg
    title: str
    alt: str  # what it shows, in words, for people who cannot see it
    url: str  # with its content hash
    series: int  # how many series it draws


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:,.1f}"


def _share_series(
    months: list[tuple[str, dict[str, int]]],
) -> list[tuple[str, list[float]]]:
    """Per-cent series of the most downloaded values (and "other"), one value per month."""
    overall: dict[str, int] = {}
    for _, values in months:
        for value, count in values.items():
            overall[value] = overall.get(value, 0) + count
    ranked = sorted(overall, key=lambda value: (-overall[value], value))
    shown, rest = ranked[:SHARE_SERIES], set(ranked[SHARE_SERIES:])
    series: list[tuple[str, list[float]]] = [(value, []) for value in shown]
    other: list[float] = []
    for _, values in months:
        total = sum(values.values()) or 1
        for value, points in series:
            points.append(100 * values.get(value, 0) / total)
        other.append(100 * sum(values.get(value, 0) for value in rest) / total)
    if rest:
        series.append(("other", other))
    return series


def _plots(figures: StatsFigures) -> list[tuple[str, str, str, bytes, int]]:
    """(name, title, alt, SVG, series) of every plot."""
    found = []
    days = [day_text(d.day) for d in figures.daily]
    found.append(
        (
            "downloads-per-day",
            f"Downloads per day, last {len(days)} days",
            f"Bar plot of downloads per day from {days[0]} to {days[-1]}",
            plots.bar_plot(days, [d.downloads for d in figures.daily], "downloads"),
            1,
        )
    )
    months = [month for month, _ in figures.monthly]
    found.append(
        (
            "downloads-per-month",
            "Downloads per month",
            "Bar plot of downloads per month" + (f" since {months[0]}" if months else ""),
            plots.bar_plot(months, [n for _, n in figures.monthly], "downloads"),
            1,
        )
    )
    for dimension in SHARE_DIMENSIONS:
        share_months = figures.shares.get(dimension, [])
        series = _share_series(share_months)
        title = _SHARE_TITLES[dimension]
        found.append(
            (
                f"share-{dimension}",
                f"{title}, share of downloads per month",
                f"Stacked bars: {title.lower()} as a share of each month's downloads",
                plots.share_plot([m for m, _ in share_months], series),
                len(series),
            )
        )
    targets = figures.targets
    build_series = [
        ("built", [float(t.built) for t in targets]),
        ("failed", [float(t.failed) for t in targets]),
        ("other", [float(t.other) for t in targets]),
    ]
    found.append(
        (
            "builds-per-target",
            "Builds per target",
            "Stacked bars of build attempts per target: built, failed, other",
            plots.stacked_bar_plot([t.target for t in targets], build_series, "build attempts"),
            len(build_series) if targets else 0,
        )
    )
    return found


def render_stats(figures: StatsFigures) -> dict[str, bytes]:
    """Every file of the statistics, by path from the tree's root."""
    files: dict[str, bytes] = {}
    shown: list[Plot] = []
    for name, title, alt, svg, series in _plots(figures):
        files[f"stats/{name}.svg"] = svg
        digest = hashlib.sha256(svg).hexdigest()[:10]
        shown.append(Plot(name, title, alt, f"/stats/{name}.svg?v={digest}", series))
    context: dict[str, Any] = {
        "figures": figures,
        "plots": shown,
        "today": day_text(figures.today),
        "saved_30d": _hours(figures.time_saved.last_30_days),
        "saved_total": _hours(figures.time_saved.total),
        "targets": [
            (t, "\u2013" if t.success_rate is None else f"{100 * t.success_rate:.0f} %")
            for t in figures.targets
        ],
    }
    files["stats/index.html"] = template("stats.html").render(context).encode()
    files["stats.json"] = orjson.dumps(figures.as_json())
    return files
