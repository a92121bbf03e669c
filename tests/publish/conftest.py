"""Fixtures: one tree per test module, served by wheelfarm's server and by nginx in front of it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.publish.published import Published, publish_demo_index
from tests.publish.servers import Nginx, nginx_available, start_nginx, write_tree
from wheelfarm.web.asgi import Message, Receive, Scope, Send
from wheelfarm.web.runner import RunningServer, serve_index_in_thread


async def echo_api(scope: Scope, receive: Receive, send: Send) -> None:
    """A stand-in for the builder API: says which method and path reached it."""
    if scope["type"] != "http":
        return
    body = json.dumps({"api": True, "method": scope["method"], "path": scope["path"]}).encode()
    start: Message = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"application/json")],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tree(tmp_path_factory.mktemp("tree"))


@pytest.fixture(scope="module")
def builtin(tree: Path) -> Iterator[RunningServer]:
    server = serve_index_in_thread(tree, api=echo_api, access_log=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def nginx(tree: Path, builtin: RunningServer, tmp_path_factory: pytest.TempPathFactory):
    nginx_available()
    upstream_port = int(builtin.url.rsplit(":", 1)[1])
    server: Nginx = start_nginx(tmp_path_factory.mktemp("nginx"), tree, upstream_port)
    yield server
    server.stop()


@pytest.fixture(params=["builtin", "nginx"])
def base_url(request: pytest.FixtureRequest) -> str:
    """The same tree behind each server: every behaviour test runs against both."""
    server = request.getfixturevalue(request.param)
    url: str = server.url
    return url


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """No default Accept header (httpx sends */* otherwise): each test says what it accepts."""
    with httpx.Client(timeout=10, follow_redirects=False) as http:
        del http.headers["accept"]
        yield http


@pytest.fixture(scope="session")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    """A real index: real builds of demo sdists, written by the tree writer, served for real."""
    site = publish_demo_index(tmp_path_factory.mktemp("published"))
    yield site
    site.server.stop()
