"""devpi-server as a mirror of the same index, the way its users run it in front of an index.

devpi keeps what it mirrors in its own store and answers from there until its cache expires
(30 minutes by default), so after one warm-up request per project it serves from its store
without asking the upstream: that is the figure worth comparing. Its upstream here is
``wheelfarm serve`` over the benchmark's tree.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from tests.publish.servers import free_port

from benchmarks.serve_index import stop, wait_for
from benchmarks.suite.measure import NotMeasured
from benchmarks.suite.tools import tool_venv

__all__ = ["MIRROR_PREFIX", "devpi_mirror"]

#: Where the mirror's simple pages are.
MIRROR_PREFIX = "/root/mirror/+simple/"


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    if result.returncode != 0:
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise NotMeasured(f"{what} failed: {last[0]}")


@contextmanager
def devpi_mirror(base: Path, upstream_simple: str, names: list[str]) -> Iterator[int]:
    """A devpi-server with ``root/mirror`` mirroring ``upstream_simple``, warmed on ``names``."""
    bin_dir = tool_venv("devpi", ["devpi-server", "devpi-client"])
    server_dir, client_dir = base / "devpi-server", base / "devpi-client"
    _run([str(bin_dir / "devpi-init"), "--serverdir", str(server_dir), "--no-root-pypi"],
         "devpi-init")  # fmt: skip
    port = free_port()
    process = subprocess.Popen(
        [str(bin_dir / "devpi-server"), "--serverdir", str(server_dir), "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ),
    )  # fmt: skip
    try:
        try:
            wait_for(port, process, "devpi-server")
        except SystemExit as error:
            raise NotMeasured(str(error)) from error
        devpi = [str(bin_dir / "devpi"), "--clientdir", str(client_dir)]
        _run([*devpi, "use", f"http://127.0.0.1:{port}/"], "devpi use")
        _run([*devpi, "login", "root", "--password", ""], "devpi login")
        _run([*devpi, "index", "-c", "root/mirror", "type=mirror", f"mirror_url={upstream_simple}"],
             "devpi index -c")  # fmt: skip
        with httpx.Client(timeout=60) as client:
            for name in names:
                response = client.get(f"http://127.0.0.1:{port}{MIRROR_PREFIX}{name}/")
                if response.status_code != 200:
                    raise NotMeasured(f"devpi's mirror answered {response.status_code} for {name}")
        yield port
    finally:
        stop(process)
