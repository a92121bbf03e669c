"""``wheelfarm up`` against careless operators: one ``up`` per data directory, and a first start
racing other commands on an empty one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.fake_upstream import FakeUpstream


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        fake.create("demo-up")
        yield fake


def _env(data_dir: Path, upstream: FakeUpstream) -> dict[str, str]:
    return {
        **os.environ,
        "WHEELFARM_UPSTREAM": upstream.simple_url,
        "WHEELFARM_PROJECTS": "demo-up",
        "WHEELFARM_PORT": "0",
        "WHEELFARM_DATA_DIR": str(data_dir),
        "WHEELFARM_POLL_SECONDS": "0.5",
    }


def _start_up(cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "wheelfarm", "up"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_until_serving(data_dir: Path, process: subprocess.Popen[str]) -> None:
    """Until the publisher has written the index: the store, the server and the builder are up."""
    index = data_dir / "www" / "simple" / "index.html"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if index.exists():
            return
        time.sleep(0.1)
    raise AssertionError(f"up never published {index} (exit status {process.poll()})")


def test_a_second_up_on_one_data_dir_exits_2_naming_the_directory_and_the_first_pid(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    data_dir = tmp_path / "data"
    env = _env(data_dir, upstream)
    first = _start_up(tmp_path, env)
    try:
        _wait_until_serving(data_dir, first)
        second = subprocess.run(
            [sys.executable, "-m", "wheelfarm", "up"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        time.sleep(2.0)  # the first one's builder would die on its revoked token by now
        still_running = first.poll() is None
    finally:
        first.send_signal(signal.SIGTERM)
        _, first_stderr = first.communicate(timeout=60)
    assert second.returncode == 2, second.stderr
    assert f"PID {first.pid}" in second.stderr
    assert str(data_dir.resolve()) in second.stderr.replace("\n", "")
    assert still_running, first_stderr
    assert first.returncode == 0, first_stderr
    assert "Traceback" not in first_stderr and "401" not in first_stderr


def test_up_and_builds_started_together_on_an_empty_data_dir_both_work(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    for attempt in range(5):
        data_dir = tmp_path / f"data{attempt}"
        env = _env(data_dir, upstream)
        started = _start_up(tmp_path, env)
        builds = subprocess.Popen(
            [sys.executable, "-m", "wheelfarm", "builds", "--json"],
            cwd=tmp_path,
            env={**env, "WHEELFARM_DATA_DIR": str(data_dir)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_until_serving(data_dir, started)
            _, builds_err = builds.communicate(timeout=120)
            time.sleep(0.5)
            up_alive = started.poll() is None
        finally:
            started.send_signal(signal.SIGTERM)
            _, up_err = started.communicate(timeout=60)
        # builds never creates a database: it either finds the one up made, or says none is there
        assert builds.returncode == 0 or "no database" in builds_err, builds_err
        assert "Traceback" not in builds_err
        assert up_alive and started.returncode == 0, up_err


def test_up_shows_its_upstream_and_store_without_their_passwords(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    data_dir = tmp_path / "data"
    with_password = upstream.simple_url.replace("http://", "http://mirror:secret@")
    env = {**_env(data_dir, upstream), "WHEELFARM_UPSTREAM": with_password}
    process = subprocess.Popen(
        [sys.executable, "-m", "wheelfarm", "-vv", "up"],  # -vv: httpx logs every request
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_until_serving(data_dir, process)
        time.sleep(1.5)  # a few follow rounds, each logged by httpx
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    shown = with_password.replace("mirror:secret@", "mirror:***@")
    assert f"from {shown}" in stdout, stdout
    assert "store: sqlite:///" in stdout
    assert "HTTP Request: GET http://mirror:***@127.0.0.1" in " ".join(stderr.split())
    assert "secret" not in stdout + stderr
