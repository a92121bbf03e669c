"""The builder API's /docs page works offline: every asset it loads is served by the app."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect, sync_playwright
from sqlalchemy import Engine

from tests.publish.test_browser import chromium
from wheelfarm.farm.api import FarmConfig, create_builder_app
from wheelfarm.web.runner import serve_in_thread, serve_index_in_thread


def test_docs_page_loads_swagger_ui_from_the_app_itself(engine: Engine, tmp_path: Path) -> None:
    config = FarmConfig(index_url="http://127.0.0.1:9/simple/", wheel_dir=tmp_path / "files")
    server = serve_in_thread(create_builder_app(engine, config))
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            page = client.get("/docs")
            assert page.status_code == 200
            assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
            scripts = [a for a in assets if a.endswith(".js")]
            styles = [a for a in assets if a.endswith(".css")]
            assert scripts and styles, page.text
            for asset in assets:
                assert asset.startswith("/"), f"{asset} is not served here: /docs needs a network"
                response = client.get(asset)
                assert response.status_code == 200, asset
            bundle = client.get(scripts[0]).text
            assert "SwaggerUIBundle" in bundle
            major = re.search(r'"?version"?\s*[:=]\s*"(\d+)\.', bundle)
            openapi = client.get("/openapi.json").json()["openapi"]
            # FastAPI writes OpenAPI 3.1, which Swagger UI renders from version 5 on.
            assert openapi.startswith("3.1") and (major is None or int(major.group(1)) >= 5)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        yield launched
        launched.close()


def test_docs_renders_the_operations_in_chromium_with_no_policy_violation(
    engine: Engine, tmp_path: Path, browser: Browser
) -> None:
    """Through the index server, with the security headers it adds: Swagger UI starts, lists
    the builder API's operations, and the browser reports no Content-Security-Policy refusal
    (Chromium logs each one as a console error) and no script error."""
    (tmp_path / "www").mkdir()
    config = FarmConfig(index_url="http://127.0.0.1:9/simple/", wheel_dir=tmp_path / "files")
    server = serve_index_in_thread(tmp_path / "www", api=create_builder_app(engine, config))
    problems: list[str] = []
    page = browser.new_page()
    try:
        page.on(
            "console",
            lambda message: problems.append(message.text) if message.type == "error" else None,
        )
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(server.url + "/docs")
        operations = page.locator(".opblock-summary-path")
        expect(operations.first).to_be_visible(timeout=30_000)
        paths = operations.all_inner_texts()
    finally:
        page.close()
        server.stop()
    assert any("/claim" in path for path in paths), paths
    assert problems == []
