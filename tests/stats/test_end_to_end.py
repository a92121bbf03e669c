"""A download served by ``wheelfarm up`` shows in ``wheelfarm stats --json``, in the project
JSON and on the project page within 10 seconds: real pip and real uv install a wheel the local
builder built, from a running ``up``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine

from tests.farm.test_cli_farm import _hear_ctrl_c, wheelfarm
from tests.fixtures.fake_upstream import FakeUpstream
from tests.fixtures.sdists import make_sdist
from tests.publish.test_clients import UV, clean_env, fresh_venv
from wheelfarm.stats.report import summary

WHEEL = "demo_up-1.0-py3-none-any.whl"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def install(tmp_path: Path, url: str, installer: str) -> subprocess.CompletedProcess[str]:
    python = fresh_venv(tmp_path / installer)
    if installer == "pip":
        command = [sys.executable, "-m", "pip", "--python", str(python), "install"]
    else:
        assert UV is not None, "uv comes with the test extras"
        command = [UV, "pip", "install", "--python", str(python)]
    return subprocess.run(
        [*command, "--index-url", f"{url}/simple/", "demo-up"],
        env=clean_env(tmp_path / installer),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_pip_and_uv_downloads_from_up_are_counted_within_ten_seconds(tmp_path, database_url):
    sdist = make_sdist(tmp_path / "sdists", "demo-up", "1.0")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with FakeUpstream() as upstream:
        upstream.create("demo-up")
        upstream.add_file("demo-up", "1.0", sdist.name, content=sdist.read_bytes())
        env = {
            **os.environ,
            "WHEELFARM_DATABASE": database_url,
            "WHEELFARM_UPSTREAM": upstream.simple_url,
            "WHEELFARM_PROJECTS": "demo-up",
            "WHEELFARM_PORT": str(port),
            "WHEELFARM_DATA_DIR": str(tmp_path / "data"),
            "WHEELFARM_PIP_OPTIONS": "--no-build-isolation",
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "wheelfarm", "up"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_hear_ctrl_c,
        )
        try:
            simple = tmp_path / "data" / "www" / "simple" / "demo-up" / "index.html"
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and not (
                simple.exists() and WHEEL in simple.read_text()
            ):
                time.sleep(0.5)
            installs = {name: install(tmp_path, url, name) for name in ("pip", "uv")}
            served = time.monotonic()
            counted: dict[str, Any] = {}
            published: dict[str, Any] = {}
            # What `stats --json` prints, read in this process: the CLI's own start-up (seconds
            # on a busy machine) is not part of how long counting takes.
            store = create_engine(database_url)
            try:
                while time.monotonic() < served + 10:
                    with store.connect() as connection:
                        counted = summary(connection, int(time.time() // 86400))
                    published = httpx.get(f"{url}/project/demo-up/json/").json()
                    if counted["downloads_total"] >= 2 and published["downloads"]["total"] >= 2:
                        break
                    time.sleep(0.5)
            finally:
                store.dispose()
            page = httpx.get(f"{url}/project/demo-up/").text
            shown = wheelfarm(tmp_path, database_url, "stats", "--json")
            found = json.loads(shown.stdout) if shown.returncode == 0 else {}
            stats_page = httpx.get(f"{url}/stats/")
        finally:
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=60)
    for name, done in installs.items():
        assert done.returncode == 0, (name, done.stderr)
    assert counted["downloads_total"] == 2, counted  # within the ten seconds
    assert published["downloads"] == {"last_30_days": 2, "total": 2}, published  # likewise
    assert found["downloads_total"] == 2, found  # and the command says the same
    assert found["searches_30d"] >= 2
    assert found["top_projects"] == [{"name": "demo-up", "downloads_30d": 2, "downloads_total": 2}]
    assert set(found["shares"]["installer"]) == {"pip", "uv"}
    assert sum(found["shares"]["python"].values()) == 2
    assert '<div class="figure" data-key="downloads-total"><dt>all time</dt><dd>2</dd>' in page
    assert stats_page.status_code == 200  # written by up once it has started
    assert stats_page.text.count('<img class="stats-plot"') == 7
