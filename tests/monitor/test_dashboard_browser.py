"""The dashboard in headless Chromium: sign in, see the farm, watch it change without reload."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.monitor.conftest import Master
from tests.publish.test_browser import chromium
from wheelfarm.monitor.sampler import SamplerConfig, sample_once
from wheelfarm.protocol import Health, Heartbeat

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    opened.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert errors == []


def test_the_dashboard_shows_the_farm_and_updates_live(
    master: Master, page: Page, tmp_path: Path
) -> None:
    master.hello()
    hot = Health(load=3.5, cpu_temperature=85.0, memory_total=8 << 30, memory_available=6 << 30)
    master.builder().claim(Heartbeat(health=hot.model_copy(update={"clock": master.clock()})))
    master.flush()  # the readings reach the store, for the sampler
    config = SamplerConfig(tmp_path, tmp_path, tmp_path, min_free_disk=1)
    for minutes in (3, 2, 1):
        sample_once(master.engine, config, master.clock() - 60 * minutes)
    page.goto(master.url + "/monitor/")
    expect(page.locator("h1")).to_have_text("wheelfarm monitor")
    page.fill("input[name=token]", master.admin_token)
    page.click("button[type=submit]")
    row = page.locator("#builder-table tr[data-name='pi-1']")
    expect(row).to_contain_text("idle")
    expect(row).to_contain_text("hot: 85 °C")
    expect(page.locator("#alerts")).to_contain_text("builder:pi-1: hot: 85 °C")
    expect(page.locator(".graph[data-reading='load'] polyline")).to_have_count(1)
    # An operator pauses the farm elsewhere: the page shows it at its next poll, unreloaded.
    page.evaluate("window.marker = 1")
    httpx.post(master.url + "/monitor/control", json={"action": "pause"}, headers=master.admin())
    expect(page.locator("#farm-state")).to_contain_text("paused (by an operator)", timeout=10_000)
    assert page.evaluate("window.marker") == 1  # the same page: no reload
    # The page's own buttons send controls (with its form token) and the builder hears them.
    row.locator("button[data-action=stop]").click()
    expect(row).to_contain_text("paused")
    assert master.builder().claim().command == "stop"
    page.locator("a[data-source='builder:pi-1']").click()
    expect(page.locator("#source")).to_have_text("builder:pi-1")
    expect(page.locator(".graph[data-reading='cpu_temperature']")).to_be_visible()
