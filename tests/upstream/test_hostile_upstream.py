"""An upstream that attacks us: endless pages, pages sent a byte at a time, redirects elsewhere.

Each is a real HTTP server on 127.0.0.1; the follower's own clients read from it.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.fixtures.fake_upstream import FakeUpstream
from wheelfarm.errors import MalformedResponse, UpstreamError
from wheelfarm.http import ResponseLimits, RetryPolicy, new_client
from wheelfarm.names import NormalizedName
from wheelfarm.store.events import MAX_SERIAL
from wheelfarm.store.journal import position
from wheelfarm.upstream.follow import Follower
from wheelfarm.upstream.pages import PEP691_JSON, PageClient
from wheelfarm.upstream.prefetch import ChangelogSource

MiB = 1024 * 1024
POLICY = RetryPolicy(retries=2, initial_wait=0.01, max_wait=0.05)
OK_PAGE = json.dumps(
    {"meta": {"api-version": "1.1", "_last-serial": 7}, "name": "ok", "files": [], "versions": []}
).encode()


class _Hostile(http.server.BaseHTTPRequestHandler):
    server: HostileServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _start(self, status: int = 200, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", PEP691_JSON)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()

    def _endless(self, pause: float, chunk: bytes) -> None:
        """Send ``chunk`` after ``chunk`` until the client hangs up; count what went out."""
        try:
            while not self.server.closing.is_set():
                self.wfile.write(chunk)
                self.wfile.flush()
                self.server.sent += len(chunk)
                time.sleep(pause)
        except OSError:
            self.server.hung_up.set()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.end_headers()
        self._endless(0, b"<!-- padding -->" * 65536)

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        redirects = {
            "/simple/moved/": "/simple/ok/",
            "/simple/away/": f"http://127.0.0.1:{self.server.other_port}/simple/ok/",
            "/simple/link-local/": "http://169.254.169.254/latest/meta-data/",
            "/simple/loop/": "/simple/loop/",
        }
        if self.path in redirects:
            self._start(302, Location=redirects[self.path])
        elif self.path == "/simple/ok/":
            self._start()
            self.wfile.write(OK_PAGE)
        elif self.path == "/simple/declared/":
            self._start(Content_Length=str(400 * MiB))
            self._endless(0, b" " * MiB)
        elif self.path == "/simple/slow-headers/":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Padding: ")
            self._endless(0.2, b"x")
        elif self.path == "/simple/huge/":
            self._start()
            self._endless(0, b" " * MiB)
        else:  # /simple/trickle/
            self._start()
            self._endless(0.2, b" ")


class HostileServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Hostile)
        self.sent = 0
        self.other_port = 0
        self.requests: list[str] = []
        self.closing = threading.Event()
        self.hung_up = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    servers = [HostileServer(), HostileServer()]
    servers[0].other_port = servers[1].server_address[1]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    yield servers[0]
    for server in servers:
        server.closing.set()
        server.shutdown()
        server.server_close()


def _pages(hostile: HostileServer, limits: ResponseLimits, timeout: float = 5.0) -> PageClient:
    client = new_client(timeout, limits)
    return PageClient(f"{hostile.url}/simple/", lambda name: None, client, POLICY)


@pytest.mark.parametrize("path", ["huge", "declared"])
def test_an_endless_page_is_refused_at_the_size_cap_naming_url_and_limit(
    hostile: HostileServer, path: str
) -> None:
    pages = _pages(hostile, ResponseLimits(max_bytes=4 * MiB, deadline=60))
    started = time.monotonic()
    with pytest.raises(UpstreamError) as caught:
        pages.fetch(NormalizedName(path))
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert f"{hostile.url}/simple/{path}/" in message
    assert f"over the limit of {4 * MiB} bytes (max_upstream_response_bytes)" in message
    assert hostile.hung_up.wait(10)  # we hung up rather than read on
    assert hostile.sent < 4 * MiB + 16 * MiB  # the cap plus what the sockets' buffers held
    assert hostile.requests.count(f"/simple/{path}/") == 1  # not retried


def test_an_endless_changelog_answer_is_refused_at_the_size_cap(hostile: HostileServer) -> None:
    source = ChangelogSource(f"{hostile.url}/pypi", 5.0, POLICY, ResponseLimits(2 * MiB, 60))
    with pytest.raises(UpstreamError, match="over the limit of 2097152 bytes"):
        source.last_serial()


def test_headers_sent_a_byte_at_a_time_are_dropped_at_the_deadline(
    hostile: HostileServer,
) -> None:
    pages = _pages(hostile, ResponseLimits(max_bytes=MiB, deadline=2.0), timeout=5.0)
    started = time.monotonic()
    with pytest.raises(UpstreamError) as caught:
        pages.fetch(NormalizedName("slow-headers"))
    elapsed = time.monotonic() - started
    assert elapsed < 4.0  # the deadline once, not the per-read timeout times the retries
    assert "took over 2 s (upstream_deadline_seconds)" in str(caught.value)
    assert hostile.requests.count("/simple/slow-headers/") == 1  # a deadline is not retried


def test_the_deadline_reaches_every_transport_httpx_builds() -> None:
    """The deadline rests on httpx's private pool; this fails if an httpx release moves it."""
    with new_client(5.0) as client:
        backend = client._transport._pool._network_backend  # type: ignore[attr-defined]
    assert type(backend).__name__ == "_DeadlineBackend"


def test_a_page_sent_a_byte_at_a_time_is_dropped_at_the_deadline(hostile: HostileServer) -> None:
    pages = _pages(hostile, ResponseLimits(max_bytes=MiB, deadline=2.0), timeout=5.0)
    started = time.monotonic()
    with pytest.raises(UpstreamError) as caught:
        pages.fetch(NormalizedName("trickle"))
    elapsed = time.monotonic() - started
    assert 2.0 <= elapsed < 4.0  # not the timeout times the retries: the deadline, once
    message = str(caught.value)
    assert f"{hostile.url}/simple/trickle/" in message
    assert "took over 2 s (upstream_deadline_seconds)" in message


def test_a_redirect_within_the_upstream_is_followed(hostile: HostileServer) -> None:
    project = _pages(hostile, ResponseLimits()).fetch(NormalizedName("moved"))
    assert project is not None and project.name == "ok"


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("away", "http://127.0.0.1:{other}/simple/ok/"),  # same host, another port
        ("link-local", "http://169.254.169.254/latest/meta-data/"),
    ],
)
def test_a_redirect_out_of_the_upstream_is_refused_naming_both_urls(
    hostile: HostileServer, path: str, target: str
) -> None:
    with pytest.raises(UpstreamError) as caught:
        _pages(hostile, ResponseLimits()).fetch(NormalizedName(path))
    message = str(caught.value)
    assert f"from {hostile.url}/simple/{path}/ to {target.format(other=hostile.other_port)}" in (
        message
    )
    assert "outside the upstream's origin" in message


def test_a_redirect_loop_ends(hostile: HostileServer) -> None:
    with pytest.raises(UpstreamError, match="more than 5 redirects"):
        _pages(hostile, ResponseLimits()).fetch(NormalizedName("loop"))


class _LyingUpstream(FakeUpstream):
    """Reports a modest last serial, then sends a row at the largest serial there is."""

    @property
    def last_serial(self) -> int:
        return 3


def test_a_changelog_row_far_past_the_last_serial_does_not_move_the_position(
    engine: Engine,
) -> None:
    with _LyingUpstream(max_rows=10) as upstream:
        upstream.create("a")
        upstream.release("a", "1.0")
        upstream.release("a", "1.1")
        upstream.add("a", "6.6", "new release", serial=MAX_SERIAL)
        with new_client(5.0) as client:
            pages = PageClient(upstream.simple_url, lambda name: None, client, POLICY)
            source = ChangelogSource(upstream.changelog_url, 5.0, POLICY)
            follower = Follower(engine, pages, source, sleep=lambda seconds: None)
            with pytest.raises(MalformedResponse) as caught:
                follower.catch_up(prefetch=False)
    assert f"a row at serial {MAX_SERIAL} is far past the upstream's last serial 3" in str(
        caught.value
    )
    with engine.connect() as connection:
        assert position(connection) == 0
