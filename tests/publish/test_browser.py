"""The project pages in a real browser: headless Chromium (the Debian package) under Playwright.

Screenshots go to ``test-artifacts/`` (or ``$WHEELFARM_ARTIFACTS``) for people to look at.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.publish.published import YANK_REASON, Published

ARTIFACTS = Path(os.environ.get("WHEELFARM_ARTIFACTS", "test-artifacts")).resolve()


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "Chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as driver:
        # --no-sandbox: Chromium refuses its own sandbox as root, as CI runs
        launched = driver.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))

    def refused(message: ConsoleMessage) -> None:
        """A resource or script the Content-Security-Policy refused is reported on the console."""
        if "Content Security Policy" in message.text:
            errors.append(message.text)

    opened.on("console", refused)
    yield opened
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    opened.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert errors == []  # no script on our pages failed, nothing was refused


def test_the_releases_table_shows_each_release_on_each_target(
    page: Page, published: Published
) -> None:
    page.goto(f"{published.url}/project/demo-client/")
    rows = page.locator("table.releases tr[data-version]")
    versions = [rows.nth(i).get_attribute("data-version") for i in range(rows.count())]
    assert versions == ["2.0rc1", "1.2", "1.1", "1.0"]  # newest first
    statuses = page.locator("table.releases td.status")
    assert statuses.count() == 4  # one target column
    built = page.locator('tr[data-version="1.0"] td.status[data-status="built"]')
    assert built.count() == 1
    assert built.inner_text().strip() != ""


def test_badges_mark_the_pre_release_and_the_yanked_release_with_its_reason(
    page: Page, published: Published
) -> None:
    page.goto(f"{published.url}/project/demo-client/")
    assert page.locator('tr[data-version="2.0rc1"] .badge-pre').is_visible()
    yanked = page.locator('tr[data-version="1.1"] .badge-yanked')
    assert yanked.is_visible()
    assert YANK_REASON in page.locator('tr[data-version="1.1"]').inner_text()
    assert page.locator('tr[data-version="1.0"] .badge-yanked').count() == 0
    # The summary from upstream is shown as text, not markup.
    assert "a <demo> & nothing more" in page.locator("body").inner_text()


def test_a_failed_build_links_to_its_log(page: Page, published: Published) -> None:
    page.goto(f"{published.url}/project/demo-broken/")
    failed = page.locator('td.status[data-status="failed"]')
    assert failed.count() == 1
    failed.locator("a").first.click()
    page.wait_for_load_state()
    assert "/logs/" in page.url
    assert "deliberate build failure" in page.locator("body").inner_text()


def test_search_finds_a_project_by_part_of_its_name(page: Page, published: Published) -> None:
    page.goto(f"{published.url}/search/")
    page.fill("#search", "EXT")
    results = page.locator("#results a")
    results.first.wait_for()
    assert [results.nth(i).inner_text() for i in range(results.count())] == ["demo-ext"]
    results.first.click()
    page.wait_for_url(f"{published.url}/project/demo-ext/")
    assert page.locator('td.status[data-status="built"]').count() == 1


def test_the_search_page_reads_its_query_from_the_url(page: Page, published: Published) -> None:
    page.goto(f"{published.url}/search/?q=demo")
    results = page.locator("#results a")
    results.first.wait_for()
    names = sorted(results.nth(i).inner_text() for i in range(results.count()))
    assert names == ["demo-broken", "demo-client", "demo-ext"]
