"""The download figures people see: project pages, the project JSON, packages.json, /stats/ and
/stats.json, on both engines. Hits go in through the real log ingester, builds through the
builder API (tests/publish/states.py)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.publish.states import TARGET, UPSTREAM, State
from tests.stats.lines import BOT_AGENT, PIP_AGENT, UV_AGENT, nginx_line
from wheelfarm.publish import site_pages
from wheelfarm.publish.loader import load_listing, load_project, load_publications
from wheelfarm.publish.regenerate import write_all
from wheelfarm.publish.stats_page import render_stats
from wheelfarm.publish.stats_refresh import DownloadRefresh, refresh_downloads, write_statistics
from wheelfarm.publish.values import DOWNLOAD_DAYS, SiteIndex
from wheelfarm.stats.figures import (
    DAILY_DAYS,
    DayCount,
    StatsFigures,
    TargetBuilds,
    TimeSaved,
    load_figures,
)
from wheelfarm.stats.hits import DAY
from wheelfarm.stats.logs import LogIngester

NOW = 1_750_000_000.0
TODAY = int(NOW // DAY)
WHEEL = f"demo-1.0-{TARGET.name}.whl"
FILE = f"/files/demo/{WHEEL}"


def ingest(engine: Engine, lines: list[bytes]) -> None:
    ingester = LogIngester(engine, b"s" * 32, now=NOW)
    ingester.feed(lines)
    ingester.flush()


def downloads(at: float, count: int, path: str = FILE, agent: str = PIP_AGENT) -> list[bytes]:
    """``count`` downloads at about ``at``, a second apart (each line is a distinct hit)."""
    return [nginx_line(at - second, path, agent=agent) for second in range(count)]


@pytest.fixture
def state(engine: Engine, tmp_path: Path) -> State:
    """demo 1.0 built here (a 2.5 s build), bar 1.0 failed to build."""
    state = State(engine, tmp_path)
    state.target()
    state.release("demo", "1.0")
    state.release("bar", "1.0")
    state.schedule("demo")
    state.build(WHEEL, log="built\n")
    state.schedule("bar")
    state.build(None, log="no compiler\n", status="failed")
    return state


def test_stats_figures_count_days_months_top_missed_and_shares(state: State) -> None:
    ingest(
        state.engine,
        [
            *downloads(NOW, 3),
            *downloads(NOW - DAY, 1, agent=UV_AGENT),
            *downloads(NOW - 40 * DAY, 2),
            *downloads(NOW, 1, path="/files/other/other-1.0-py3-none-any.whl"),
            *downloads(NOW, 5, agent=BOT_AGENT),  # bots: in no figure
            nginx_line(NOW, "/simple/wanted/"),
            nginx_line(NOW - 1, "/simple/wanted/", agent=UV_AGENT),
        ],
    )
    with state.engine.connect() as connection:
        figures = load_figures(connection, TODAY)
    assert figures.downloads_total == 7 and figures.downloads_30d == 5
    assert len(figures.daily) == DAILY_DAYS and figures.daily[-1] == DayCount(TODAY, 4)
    assert figures.daily[-2] == DayCount(TODAY - 1, 1)
    assert sum(n for _, n in figures.monthly) == 7
    assert [p["name"] for p in figures.top_30d] == ["demo", "other"]
    assert figures.top_all_time[0] == {"name": "demo", "downloads_30d": 4, "downloads_total": 6}
    assert figures.missed == [{"name": "wanted", "searches_30d": 2}]
    installers: dict[str, int] = {}
    for _, values in figures.shares["installer"]:
        for value, count in values.items():
            installers[value] = installers.get(value, 0) + count
    assert installers == {"pip": 6, "uv": 1}
    document = json.loads(render_stats(figures)["stats.json"])
    assert document["downloads_total"] == 7 and len(document["downloads_per_day"]) == DAILY_DAYS
    assert document["missed_projects"] == [{"name": "wanted", "searches_30d": 2}]


def test_time_saved_is_each_downloaded_wheel_build_duration_and_builds_have_success_rates(
    state: State,
) -> None:
    ingest(state.engine, [*downloads(NOW, 3), *downloads(NOW - 40 * DAY, 1)])
    with state.engine.connect() as connection:
        figures = load_figures(connection, TODAY)
    assert figures.time_saved == TimeSaved(3 * 2.5, 4 * 2.5)
    assert figures.targets == [TargetBuilds(TARGET.name, 1, 1, 0)]
    assert figures.targets[0].success_rate == 0.5
    assert json.loads(render_stats(figures)["stats.json"])["builds"][0]["success_rate"] == 0.5


def test_project_pages_json_and_packages_json_show_downloads(state: State) -> None:
    ingest(state.engine, [*downloads(NOW, 2), *downloads(NOW - 40 * DAY, 3)])
    with state.engine.connect() as connection:
        # The hits are of a fixed day (NOW): the figures are counted up to it.
        publication = load_publications(
            connection, ["demo"], upstream_simple_url=UPSTREAM, today=TODAY
        )["demo"]
        quiet = load_project(connection, "bar", upstream_simple_url=UPSTREAM)
        site = load_listing(connection, today=TODAY)
    assert publication.project is not None and quiet is not None
    counted = publication.project.downloads
    assert (counted.last_30_days, counted.total) == (2, 5)
    assert len(counted.daily) == DOWNLOAD_DAYS and counted.daily[-1] == 2
    document = json.loads(site_pages.render_project_json(publication.project))
    assert document["downloads"] == {"last_30_days": 2, "total": 5}
    page = site_pages.render_project_page(publication.project).decode()
    assert '<div class="figure" data-key="downloads-30d"><dt>last 30 days</dt><dd>2</dd>' in page
    assert page.count('<rect class="bar"') == DOWNLOAD_DAYS
    assert "No downloads in the last 30 days." in site_pages.render_project_page(quiet).decode()
    assert json.loads(site_pages.render_project_json(quiet))["downloads"] == {
        "last_30_days": 0,
        "total": 0,
    }
    listed = {row[0]: row[3:] for row in json.loads(site_pages.render_packages_json(site))}
    assert listed == {"bar": [0, 0], "demo": [2, 5]}


def test_refresh_rewrites_only_the_pages_whose_downloads_moved(state: State) -> None:
    write_all(state.engine, state.tree, upstream_simple_url=UPSTREAM, base_url="http://x")
    refresh = DownloadRefresh()
    first = refresh_downloads(
        state.engine, state.tree, refresh, upstream_simple_url=UPSTREAM, today=TODAY
    )
    assert first.changed == []  # nothing downloaded yet
    ingest(state.engine, downloads(NOW, 2))
    moved = refresh_downloads(
        state.engine, state.tree, refresh, upstream_simple_url=UPSTREAM, today=TODAY
    )
    assert moved.changed == ["demo"]
    written = json.loads((state.tree.project / "demo" / "json" / "index.json").read_bytes())
    assert written["downloads"] == {"last_30_days": 2, "total": 2}
    again = refresh_downloads(
        state.engine, state.tree, refresh, upstream_simple_url=UPSTREAM, today=TODAY
    )
    assert again.changed == [] and again.written == 0


def test_statistics_are_written_into_the_tree_with_valid_svg_plots(state: State) -> None:
    ingest(state.engine, [*downloads(NOW, 3), *downloads(NOW - DAY, 2, agent=UV_AGENT)])
    write_statistics(state.engine, state.tree, today=TODAY)
    root = state.tree.root
    page = (root / "stats" / "index.html").read_text()
    images = re.findall(
        r'<img class="stats-plot" src="/stats/([a-z-]+)\.svg\?v=[0-9a-f]+" '
        r'alt="[^"]+" data-series="([0-9]+)">',
        page,
    )
    expected = {
        "downloads-per-day": 1,
        "downloads-per-month": 1,
        "share-installer": 2,  # pip, uv
        "share-python": 2,
        "share-distro": 2,
        "share-arch": 2,
        "builds-per-target": 3,  # built, failed, other
    }
    assert {name: int(series) for name, series in images} == expected
    for name, series in expected.items():
        svg = (root / "stats" / f"{name}.svg").read_bytes()
        ElementTree.fromstring(svg)  # well-formed XML
        found = {int(n) for n in re.findall(rb'id="series-([0-9]+)[-"]', svg)}
        assert found == set(range(series)), name
    assert json.loads((root / "stats.json").read_bytes())["downloads_total"] == 5
    listed = json.loads((root / "packages.json").read_bytes())
    assert [row[3:] for row in listed if row[0] == "demo"] == [[5, 5]]
    # The same figures give the same bytes: nothing is written again.
    assert write_statistics(state.engine, state.tree, today=TODAY).written == 0


def test_home_page_links_the_statistics() -> None:
    home = site_pages.render_home(SiteIndex(serial=0, projects=(), targets=())).decode()
    assert '<a href="/stats/">' in home


HOSTILE = '<script>alert("x")</script>$x$'


def test_stats_page_escapes_what_it_shows() -> None:
    figures = StatsFigures(
        today=TODAY,
        downloads_total=1,
        downloads_30d=1,
        daily=[DayCount(TODAY - DAILY_DAYS + 1 + i, 0) for i in range(DAILY_DAYS)],
        monthly=[("2025-06", 1)],
        top_30d=[{"name": HOSTILE, "downloads_30d": 1, "downloads_total": 1}],
        top_all_time=[],
        missed=[{"name": HOSTILE, "searches_30d": 1}],
        shares={"installer": [("2025-06", {HOSTILE: 1})], "python": [], "distro": [], "arch": []},
        targets=[TargetBuilds(HOSTILE, 1, 0, 0)],
    )
    files = render_stats(figures)
    page = files["stats/index.html"].decode()
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    svg = files["stats/share-installer.svg"]
    ElementTree.fromstring(svg)
    assert b"<script>" not in svg
