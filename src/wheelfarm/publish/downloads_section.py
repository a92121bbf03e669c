"""The project page's downloads: the last 30 days and all time, and a small bar plot per day.

Its own module so that the project page (:mod:`wheelfarm.publish.project_page`) only places the
section. The plot is an inline SVG drawn here, not by matplotlib: the writer renders every
project's page, and a matplotlib figure costs tens of milliseconds where this costs about a
tenth of one. It uses presentation attributes, never ``style``, so the site's security policy
(no inline styles) lets it show; numbers are its only data, and the dates are our own.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache, lru_cache

from wheelfarm.publish.values import DOWNLOAD_DAYS, ProjectDownloads, ProjectIndex

__all__ = ["PLOT_HEIGHT", "PLOT_WIDTH", "downloads_section"]

PLOT_WIDTH = 10 * DOWNLOAD_DAYS  # ten pixels a day
PLOT_HEIGHT = 60
_EPOCH = date(1970, 1, 1)


@lru_cache(maxsize=1024)
def _day(days: int) -> str:
    return (_EPOCH + timedelta(days=days)).isoformat()


def _plural(count: int) -> str:
    return f"{count:,} download" if count == 1 else f"{count:,} downloads"


def _plot(daily: tuple[int, ...], today: int) -> str:
    """One bar per day, oldest on the left; each bar's title gives its day and count.

    Whole pixels only: formatting floats was most of the cost (0.25 ms a plot against 0.11 ms,
    measured on a busy two-core machine), and a regeneration draws one for every project
    downloaded in the last 30 days."""
    step = PLOT_WIDTH // len(daily)
    top = max(daily) or 1
    first = today - len(daily) + 1
    scale = (PLOT_HEIGHT - 2) / top
    bars = []
    for index, count in enumerate(daily):
        height = max(round(count * scale), 1)
        faint = "" if count else ' opacity="0.25"'
        bars.append(
            f'<rect class="bar" x="{index * step}" y="{PLOT_HEIGHT - height - 1}" '
            f'width="{step - 1}" height="{height}" fill="currentColor"{faint}>'
            f"<title>{_day(first + index)}: {_plural(count)}</title></rect>"
        )
    return (
        '<figure class="downloads-figure">\n'
        f'<svg class="downloads-plot" xmlns="http://www.w3.org/2000/svg" width="{PLOT_WIDTH}" '
        f'height="{PLOT_HEIGHT}" viewBox="0 0 {PLOT_WIDTH} {PLOT_HEIGHT}" role="img" '
        f'aria-labelledby="downloads-plot-title" data-days="{len(daily)}">'
        f'<title id="downloads-plot-title">Downloads per day, {_day(first)} to {_day(today)}'
        f"</title>{''.join(bars)}</svg>\n"
        f'<figcaption class="note">Per day, {_day(first)} to {_day(today)} (UTC)</figcaption>\n'
        "</figure>\n"
    )


def downloads_section(project: ProjectIndex) -> str:
    """The ``<section>`` with the project's downloads (the counts are integers: no escaping)."""
    downloads = project.downloads
    if not downloads.total and not downloads.last_30_days:
        return _never_downloaded()  # most projects: the same section, made once
    return _section(downloads)


@cache
def _never_downloaded() -> str:
    return _section(ProjectDownloads())


def _section(downloads: ProjectDownloads) -> str:
    # Without downloads in the window there is nothing to plot, and the page then does not
    # depend on the day it is written (its bytes change only with the project).
    plot = (
        _plot(downloads.daily, downloads.today)
        if downloads.last_30_days
        else '<p class="no-downloads">No downloads in the last 30 days.</p>\n'
    )
    return (
        '<section class="downloads" aria-labelledby="downloads-heading">\n'
        '<h2 id="downloads-heading">Downloads</h2>\n<dl class="figures">\n'
        f'<div class="figure" data-key="downloads-30d"><dt>last 30 days</dt>'
        f"<dd>{downloads.last_30_days:,}</dd></div>\n"
        f'<div class="figure" data-key="downloads-total"><dt>all time</dt>'
        f"<dd>{downloads.total:,}</dd></div>\n</dl>\n"
        f"{plot}"
        '<p class="note">Downloads of this index\'s files by installers; robots are not '
        'counted. <a href="/stats/">More statistics</a>.</p>\n</section>\n'
    )
