"""The statistics people look at, in a real browser: ``/stats/`` and a project page served by
the built-in server, in headless Chromium (the Debian package) under Playwright.

Screenshots go under the test's ``tmp_path``; failures name them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page

from tests.publish.states import UPSTREAM, State
from tests.publish.test_browser import browser  # noqa: F401 - the shared Chromium fixture
from tests.stats.lines import UV_AGENT, nginx_line
from tests.stats.test_figures import FILE, WHEEL
from wheelfarm.publish.regenerate import write_all
from wheelfarm.publish.stats_refresh import write_statistics
from wheelfarm.stats.logs import LogIngester
from wheelfarm.web.runner import RunningServer, serve_index_in_thread


@pytest.fixture
def served(engine, tmp_path: Path) -> Iterator[RunningServer]:
    """demo 1.0 built here and downloaded 3 times today (pip twice, uv once); its pages and
    the statistics written, and the tree served by the built-in server."""
    state = State(engine, tmp_path / "index")
    state.target()
    state.release("demo", "1.0")
    state.schedule("demo")
    state.build(WHEEL, log="built\n")
    now = time.time()
    ingester = LogIngester(engine, b"s" * 32, now=now)
    ingester.feed(
        [
            nginx_line(now - 1, FILE),
            nginx_line(now - 2, FILE),
            nginx_line(now, FILE, agent=UV_AGENT),
        ]
    )
    ingester.flush()
    write_all(engine, state.tree, upstream_simple_url=UPSTREAM, base_url="http://127.0.0.1")
    write_statistics(engine, state.tree)
    server = serve_index_in_thread(state.tree.root)
    yield server
    server.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[tuple[Page, list[str]]]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))

    def refused(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            errors.append(message.text)

    opened.on("console", refused)
    yield opened, errors
    context.close()


def test_stats_page_shows_the_figures_and_every_plot_loads(
    page: tuple[Page, list[str]], served: RunningServer, tmp_path: Path
) -> None:
    opened, errors = page
    opened.goto(f"{served.url}/stats/")
    opened.wait_for_load_state("load")
    shot = tmp_path / "stats.png"
    opened.screenshot(path=str(shot), full_page=True)
    total = opened.locator('.figure[data-key="downloads-total"] dd')
    assert total.is_visible() and total.inner_text() == "3", f"see {shot}"
    plots = opened.locator("img.stats-plot")
    assert plots.count() == 7, f"see {shot}"
    widths = opened.eval_on_selector_all(
        "img.stats-plot", "images => images.map(i => i.complete ? i.naturalWidth : 0)"
    )
    assert all(width > 0 for width in widths), f"an SVG did not load: {widths}; see {shot}"
    assert opened.locator('table.top-projects[data-period="30d"] a').first.inner_text() == "demo"
    assert errors == [], f"see {shot}"


def test_project_page_shows_its_downloads_and_their_plot(
    page: tuple[Page, list[str]], served: RunningServer, tmp_path: Path
) -> None:
    opened, errors = page
    opened.goto(f"{served.url}/project/demo/")
    shot = tmp_path / "project.png"
    section = opened.locator("section.downloads")
    section.scroll_into_view_if_needed()
    opened.screenshot(path=str(shot), full_page=True)
    assert section.is_visible(), f"see {shot}"
    recent = section.locator('.figure[data-key="downloads-30d"] dd').inner_text()
    assert recent == "3", f"see {shot}"
    plot = section.locator("svg.downloads-plot")
    box = plot.bounding_box()
    assert box is not None and box["width"] > 0 and box["height"] > 0, f"see {shot}"
    assert plot.locator("rect.bar").count() == 30, f"see {shot}"
    assert errors == [], f"see {shot}"
