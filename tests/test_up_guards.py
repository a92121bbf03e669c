"""``wheelfarm up`` against careless operators: one ``up`` per data directory, and a first start
racing other commands on an empty one."""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.fixtures.fake_upstream import FakeUpstream
from wheelfarm.guards import SpaceWatch


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


def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGTERM, then its output; a process still running a minute later is killed, so that a
    hang fails this test alone (not a later one, where its Popen would be collected)."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.communicate(timeout=60)
    except subprocess.TimeoutExpired as error:
        process.kill()
        process.communicate()
        raise AssertionError(f"up did not stop within 60 s of SIGTERM: {error.stderr!r}") from None


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
        _, first_stderr = _stop(first)
    assert second.returncode == 2, second.stderr
    assert f"PID {first.pid}" in second.stderr
    assert str(data_dir.resolve()) in second.stderr.replace("\n", "")
    assert still_running, first_stderr
    assert first.returncode == 0, first_stderr
    assert "Traceback" not in first_stderr and "401" not in first_stderr


def test_up_and_builds_started_together_on_an_empty_data_dir_both_work(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    for attempt in range(20):  # the race showed in about one start in two
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
            _, up_err = _stop(started)
        # builds never creates a database: it either finds the one up made, or says none is there
        assert builds.returncode == 0 or "no wheelfarm database at" in builds_err, builds_err
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
        stdout, stderr = _stop(process)
    shown = with_password.replace("mirror:secret@", "mirror:***@")
    assert f"from {shown}" in stdout, stdout
    assert "store: sqlite:///" in stdout
    assert "HTTP Request: GET http://mirror:***@127.0.0.1" in " ".join(stderr.split())
    assert "secret" not in stdout + stderr


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 32 MiB tmpfs of its own (a real filesystem that fills up), unmounted afterwards."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def _fill(folder: Path) -> Path:
    """Write a file until the disk under ``folder`` is full; returns it."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as handle:
        for size in (1024 * 1024, 4096, 1):
            try:
                while True:
                    handle.write(bytes(size))
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
    return filler


class _Lines:
    """The lines a process writes to one of its pipes, read as they come."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                self.lines.append(line)

    def close(self) -> None:
        """Once the process ended: the rest of its lines, and the pipe closed."""
        self._thread.join(timeout=30)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if text in line:
                    return line
            time.sleep(0.1)
        raise AssertionError(f"never saw {text!r} in:\n{''.join(self.lines)}")


def test_a_full_disk_pauses_up_which_keeps_serving_and_resumes_with_space(
    small_disk: Path, upstream: FakeUpstream
) -> None:
    data_dir = small_disk / "data"
    process = _start_up(small_disk.parent, _env(data_dir, upstream))
    assert process.stdout is not None and process.stderr is not None
    stdout, stderr = _Lines(process.stdout), _Lines(process.stderr)
    try:
        _wait_until_serving(data_dir, process)
        url = re.search(r"the index at (http://\S+?)/ ", stdout.wait_for("wheelfarm is up"))
        assert url is not None
        filler = _fill(small_disk)
        upstream.add_file("demo-up", "2.0", "demo_up-2.0.tar.gz")  # the follower must write it
        stderr.wait_for("disk full under")
        assert process.poll() is None
        assert httpx.get(f"{url[1]}/simple/", timeout=10).status_code == 200  # still serving
        filler.unlink()
        stderr.wait_for("there is space again")
        deadline = time.monotonic() + 60
        shown = ""
        while time.monotonic() < deadline and '"2.0"' not in shown:
            time.sleep(0.5)
            shown = subprocess.run(
                [sys.executable, "-m", "wheelfarm", "show", "demo-up", "--json"],
                cwd=small_disk.parent,
                env=_env(data_dir, upstream),
                capture_output=True,
                text=True,
                timeout=60,
            ).stdout
        assert '"2.0"' in shown  # following resumed by itself
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        stdout.close()
        stderr.close()
    assert process.returncode == 0, "".join(stderr.lines)
    assert "Traceback" not in "".join(stderr.lines)


def test_the_pause_is_told_once_a_minute_however_often_the_disk_fills(tmp_path: Path) -> None:
    said: list[str] = []
    space = SpaceWatch([tmp_path], said.append, every=60)
    space.full("the database")
    space.full("the published tree")  # the publisher finds it too, a moment later
    assert space.paused
    assert space.space_back() and not space.paused
    space.full("the database")  # full again at once (a PostgreSQL server's disk, say)
    assert space.space_back()
    assert [line.split(":")[0] for line in said] == [
        "disk full under the database",
        "there is space again under the published tree",
    ]
    assert list(tmp_path.iterdir()) == []  # the probe file is gone


def test_up_started_on_a_full_disk_says_the_disk_may_be_full(
    small_disk: Path, upstream: FakeUpstream
) -> None:
    """SQLite cannot even open a WAL database without room for its shared-memory file."""
    data_dir = small_disk / "data"
    env = _env(data_dir, upstream)
    first = _start_up(small_disk.parent, env)
    _wait_until_serving(data_dir, first)
    _stop(first)
    _fill(small_disk)
    second = _start_up(small_disk.parent, env)
    stdout, stderr = second.communicate(timeout=120)
    assert second.returncode == 2, stdout + stderr
    assert "is the disk under the database full?" in stderr, stderr
    assert "Traceback" not in stderr
