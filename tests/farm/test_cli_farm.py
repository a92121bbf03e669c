"""Farm administration from the command line: targets, builders, skip, and queueing on sync."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.fixtures.fake_upstream import FakeUpstream
from wheelfarm.farm.registry import authenticate
from wheelfarm.store.database import open_store
from wheelfarm.store.schema import jobs


def wheelfarm(
    tmp_path: Path, database: str, *args: str, upstream: str = "http://127.0.0.1:9/simple/"
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WHEELFARM_DATABASE": database, "WHEELFARM_UPSTREAM": upstream}
    return subprocess.run(
        [sys.executable, "-m", "wheelfarm", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_targets_add_list_remove(tmp_path: Path, database_url: str) -> None:
    added = wheelfarm(
        tmp_path,
        database_url,
        "targets",
        "add",
        "cp39-cp39-linux_armv7l",
        "--platform",
        "manylinux_2_17_armv7l",
    )
    assert added.returncode == 0, added.stderr
    assert wheelfarm(tmp_path, database_url, "targets", "add").returncode == 0  # this machine's
    listed = json.loads(wheelfarm(tmp_path, database_url, "targets", "list", "--json").stdout)
    arm = next(t for t in listed if t["name"] == "cp39-cp39-linux_armv7l")
    assert arm["platforms"] == ["linux_armv7l", "manylinux_2_17_armv7l"]
    again = wheelfarm(tmp_path, database_url, "targets", "add", "cp39-cp39-linux_armv7l")
    assert again.returncode == 2 and "exists already" in again.stderr
    assert (
        wheelfarm(tmp_path, database_url, "targets", "remove", "cp39-cp39-linux_armv7l").returncode
        == 0
    )
    gone = wheelfarm(tmp_path, database_url, "targets", "remove", "cp39-cp39-linux_armv7l")
    assert gone.returncode == 2 and "does not exist" in gone.stderr


@pytest.mark.parametrize(
    "name",
    [
        "py3-none-any",  # not a CPython interpreter tag
        "cp311-cp311",  # no platform
        "cp311-cp311-Linux x86",  # not a platform tag
    ],
)
def test_bad_target_names_are_refused(tmp_path: Path, database_url: str, name: str) -> None:
    result = wheelfarm(tmp_path, database_url, "targets", "add", name)
    assert result.returncode == 2
    assert f"target {name!r}" in result.stderr


def test_builder_tokens_work_until_the_builder_is_removed(
    tmp_path: Path, database_url: str
) -> None:
    added = wheelfarm(tmp_path, database_url, "builders", "add", "pi1")
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip().splitlines()[-1]
    engine = open_store(database_url)
    with engine.begin() as connection:
        assert authenticate(connection, token, now=1.0) == "pi1"
        assert authenticate(connection, token + "x", now=1.0) is None
    listed = json.loads(wheelfarm(tmp_path, database_url, "builders", "list", "--json").stdout)
    assert [(b["name"], b["last_seen"]) for b in listed] == [("pi1", 1.0)]
    assert wheelfarm(tmp_path, database_url, "builders", "remove", "pi1").returncode == 0
    with engine.begin() as connection:
        assert authenticate(connection, token, now=2.0) is None
    engine.dispose()


def test_sync_queues_builds_and_skip_unskip_change_them(tmp_path: Path, database_url: str) -> None:
    with FakeUpstream() as upstream:
        upstream.create("demo")
        upstream.add_file("demo", "1.0", "demo-1.0.tar.gz")
        upstream.add_file("demo", "2.0", "demo-2.0.tar.gz")
        upstream.add_file("demo", "2.0", "demo-2.0-py3-none-any.whl")
        wheelfarm(tmp_path, database_url, "targets", "add", "cp311-cp311-linux_armv7l")
        synced = wheelfarm(
            tmp_path, database_url, "sync", "--project", "demo", upstream=upstream.simple_url
        )
        assert synced.returncode == 0, synced.stderr
        assert "queued 1 build for 1 target" in synced.stdout

    def queue() -> dict[str, tuple[str, str | None]]:
        engine = open_store(database_url)
        with engine.connect() as connection:
            rows = connection.execute(select(jobs.c.version, jobs.c.state, jobs.c.reason))
            found = {row.version: (row.state, row.reason) for row in rows}
        engine.dispose()
        return found

    assert queue() == {
        "1.0": ("pending", None),
        "2.0": ("skipped", "upstream wheel demo-2.0-py3-none-any.whl installs on this target"),
    }
    assert (
        wheelfarm(tmp_path, database_url, "skip", "demo", "1.0", "--reason", "broken").returncode
        == 0
    )
    assert queue()["1.0"] == ("skipped", "skipped: broken")
    assert wheelfarm(tmp_path, database_url, "unskip", "demo", "1.0").returncode == 0
    assert queue()["1.0"] == ("pending", None)
    missing = wheelfarm(tmp_path, database_url, "unskip", "demo", "1.0")
    assert missing.returncode == 2 and "a skip of demo 1.0 does not exist" in missing.stderr


def start_up(
    tmp_path: Path, database_url: str, upstream: str, port: int = 0
) -> subprocess.Popen[str]:
    """``wheelfarm up`` following demo-up from ``upstream``, on a free port (or ``port``)."""
    env = {
        **os.environ,
        "WHEELFARM_DATABASE": database_url,
        "WHEELFARM_UPSTREAM": upstream,
        "WHEELFARM_PROJECTS": "demo-up",
        "WHEELFARM_PORT": str(port),
        "WHEELFARM_DATA_DIR": str(tmp_path / "data"),
        "WHEELFARM_PIP_OPTIONS": "--no-build-isolation",  # no build dependencies to fetch
    }
    return subprocess.Popen(
        [sys.executable, "-m", "wheelfarm", "up"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_hear_ctrl_c,
    )


def _hear_ctrl_c() -> None:
    """Ctrl-C as at a terminal: a shell runs background jobs (a test suite started with ``&``,
    say) with SIGINT ignored, and a child would inherit that and never hear the test's SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_status(tmp_path: Path, database_url: str, wanted: str, deadline: float) -> str:
    """Poll ``wheelfarm builds`` until the one job has ``wanted`` status; returns the last seen."""
    status = ""
    while time.monotonic() < deadline and status != wanted:
        time.sleep(0.5)
        listed = wheelfarm(tmp_path, database_url, "builds", "--json")
        found = json.loads(listed.stdout) if listed.returncode == 0 else []
        status = found[0]["status"] if found else ""
    return status


def test_up_follows_builds_and_stops_cleanly(tmp_path: Path, database_url: str) -> None:
    from tests.fixtures.sdists import make_sdist

    sdist = make_sdist(tmp_path / "sdists", "demo-up", "1.0")
    with FakeUpstream() as upstream:
        upstream.create("demo-up")
        upstream.add_file("demo-up", "1.0", sdist.name, content=sdist.read_bytes())
        process = start_up(tmp_path, database_url, upstream.simple_url)
        said: list[str] = []
        assert process.stderr is not None
        hearing = threading.Thread(target=lambda: said.extend(process.stderr or ()), daemon=True)
        hearing.start()
        try:
            deadline = time.monotonic() + 120
            status = wait_for_status(tmp_path, database_url, "built", deadline)
            simple = tmp_path / "data" / "www" / "simple" / "demo-up" / "index.html"
            while time.monotonic() < deadline and not (
                simple.exists() and "demo_up-1.0-py3-none-any.whl" in simple.read_text()
            ):
                time.sleep(0.2)  # the publisher writes the project's pages within a second or so
            while time.monotonic() < deadline and not any("queue empty" in s for s in said):
                time.sleep(0.2)  # the progress line polls the queue every 2 s
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)  # its stdout is a few lines: no pipe fills
            hearing.join(timeout=10)
            stdout = process.stdout.read() if process.stdout else ""
            for pipe in (process.stdout, process.stderr):
                if pipe is not None:
                    pipe.close()
    stderr = "".join(said)
    assert status == "built", stderr
    assert "queue empty: 1 build done since start" in stderr
    assert "stopping: no build was under way" in stderr
    assert "wheelfarm is up: the index at http://127.0.0.1:" in stdout
    assert "demo_up-1.0-py3-none-any.whl#sha256=" in simple.read_text()
    assert (
        tmp_path / "data" / "www" / "files" / "demo-up" / "demo_up-1.0-py3-none-any.whl"
    ).exists()
    assert process.returncode == 0


def test_builders_pause_resume_and_stop_set_the_command_it_hears(
    tmp_path: Path, database_url: str
) -> None:
    assert wheelfarm(tmp_path, database_url, "builders", "add", "pi1").returncode == 0
    paused = wheelfarm(tmp_path, database_url, "builders", "pause", "pi1")
    assert paused.returncode == 0 and "told builder pi1 to pause" in paused.stdout
    listed = json.loads(wheelfarm(tmp_path, database_url, "builders", "list", "--json").stdout)
    assert [b["command"] for b in listed] == ["pause"]
    assert "told to pause" in wheelfarm(tmp_path, database_url, "builders", "list").stdout
    assert wheelfarm(tmp_path, database_url, "builders", "resume", "pi1").returncode == 0
    listed = json.loads(wheelfarm(tmp_path, database_url, "builders", "list", "--json").stdout)
    assert [b["command"] for b in listed] == [None]
    unknown = wheelfarm(tmp_path, database_url, "builders", "stop", "pi9")
    assert unknown.returncode == 2 and "builder 'pi9' does not exist" in unknown.stderr


def test_up_stopped_mid_build_hands_the_job_back_at_once(tmp_path: Path, database_url: str) -> None:
    from tests.fixtures.sdists import make_sdist

    sdist = make_sdist(tmp_path / "sdists", "demo-up", "1.0", build_sleep=60)
    with FakeUpstream() as upstream:
        upstream.create("demo-up")
        upstream.add_file("demo-up", "1.0", sdist.name, content=sdist.read_bytes())
        process = start_up(tmp_path, database_url, upstream.simple_url)
        try:
            status = wait_for_status(tmp_path, database_url, "building", time.monotonic() + 120)
            time.sleep(1.0)  # pip is running
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=60)
    assert status == "building", stderr
    assert process.returncode == 0
    assert "handed back to the queue" in stderr
    found = json.loads(wheelfarm(tmp_path, database_url, "builds", "--json").stdout)
    assert [(entry["status"], entry["files"]) for entry in found] == [("pending", [])]
    assert not list((tmp_path / "data" / "build").iterdir())  # the build directory is gone


def test_targets_add_takes_the_distro_from_the_settings(tmp_path: Path, database_url: str) -> None:
    (tmp_path / "wheelfarm.toml").write_text(
        '[wheelfarm.target_distros]\n"cp311-cp311-linux_armv7l" = "debian-bookworm-base"\n'
    )
    added = wheelfarm(tmp_path, database_url, "targets", "add", "cp311-cp311-linux_armv7l")
    assert added.returncode == 0, added.stderr
    listed = json.loads(wheelfarm(tmp_path, database_url, "targets", "list", "--json").stdout)
    assert [(t["name"], t["distro"]) for t in listed] == [
        ("cp311-cp311-linux_armv7l", "debian-bookworm-base")
    ]
