"""The built-in server bounds what one client can make it hold: a request's head and its URL.

The server runs as ``wheelfarm serve`` in a process of its own, so that its memory is its own
and can be measured (psutil) while one connection sends it an endless header.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.publish.servers import free_port, wait_for_port, write_tree
from wheelfarm.web.limits import MAX_REQUEST_HEAD_BYTES, MAX_URL_BYTES

MiB = 1024 * 1024


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, psutil.Process]]:
    root = write_tree(tmp_path / "tree")
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "wheelfarm", "serve", "--root", str(root), "--port", str(port)],
            env={**os.environ, "WHEELFARM_UPSTREAM": "http://127.0.0.1:9/simple/"},
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process, log)
        yield f"http://127.0.0.1:{port}", psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _send_endless(
    url: str, head: bytes, filler: bytes, total: int, then: Callable[[], object] = lambda: None
) -> bytes:
    """Send ``head`` then ``filler`` until ``total`` bytes or the server hangs up, call
    ``then`` with the connection still open, and return the server's answer (b"" for none)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sent = 0
        try:
            sock.sendall(head)
            while sent < total:
                sock.sendall(filler)
                sent += len(filler)
        except (BrokenPipeError, ConnectionResetError):
            pass
        then()
        sock.settimeout(5)
        try:
            return sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            return b""


def _rss_after_settling(process: psutil.Process) -> int:
    time.sleep(0.5)
    return process.memory_info().rss


def test_an_endless_header_is_refused_and_the_server_keeps_its_memory(served) -> None:
    url, process = served
    httpx.get(url + "/simple/").raise_for_status()  # warm: the first request loads its code
    before = _rss_after_settling(process)
    during: list[int] = []  # measured with the flooding connection still open
    answer = _send_endless(
        url,
        b"GET /simple/ HTTP/1.1\r\nHost: x\r\nX-Flood: ",
        b"a" * MiB,
        64 * MiB,
        then=lambda: during.append(_rss_after_settling(process)),
    )
    grown = max(during[0], _rss_after_settling(process)) - before
    assert grown < 16 * MiB, f"the server grew by {grown / MiB:.0f} MiB"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 ")
    assert httpx.get(url + "/simple/").status_code == 200  # and it still serves


def test_many_headers_past_the_limit_are_refused_with_431(served) -> None:
    url, _ = served
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(100))
    answer = _send_endless(url, b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n", b"", 0)
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert f"over {MAX_REQUEST_HEAD_BYTES} bytes".encode() in answer


def test_a_url_past_the_limit_is_refused_with_414(served) -> None:
    url, _ = served
    target = b"/simple/" + b"a" * (MAX_URL_BYTES + 1)
    answer = _send_endless(url, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"", 0)
    assert answer.startswith(b"HTTP/1.1 414 URI Too Long\r\n")


def test_requests_under_the_limits_and_large_bodies_are_served(served) -> None:
    url, _ = served
    with httpx.Client() as client:
        headers = {f"X-H{i}": "v" * 1000 for i in range(40)}  # 40 KiB of headers: allowed
        assert client.get(url + "/simple/", headers=headers).status_code == 200
        long_path = "/simple/" + "a" * (MAX_URL_BYTES - 100) + "/"
        assert client.get(url + long_path).status_code == 404
        posted = client.post(url + "/simple/", content=b"x" * (4 * MiB))  # a body is no head
        assert posted.status_code == 405
