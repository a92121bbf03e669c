"""The emulated builder when things go wrong: killed mid-build, run without root.

Both run the real ``wheelfarm builder --rootfs`` command in a subprocess against a master on
loopback, as an operator would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.emulation.conftest import RootFarm
from tests.fixtures.sdists import make_sdist
from wheelfarm.builder.chroot import mounts_under, unmount_stale
from wheelfarm.store.schema import jobs

pytestmark = pytest.mark.slow

#: How long the polls below wait at most for what the builder does under emulation: generous,
#: since emulated builds on a busy machine are slow; no assertion depends on how long it took.
PATIENCE = 600.0


def _builder_command(farm: RootFarm, root: Path, work: Path) -> list[str]:
    return [
        sys.executable, "-m", "wheelfarm", "--data-dir", str(work / "data"),
        "--upstream", farm.upstream.simple_url,
        "builder", "--master", farm.server.url, "--rootfs", str(root), "--work", str(work),
        "--pip-option=--no-build-isolation",  # the fake index serves no setuptools
    ]  # fmt: skip


def _environment(farm: RootFarm) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "LANG": "C.UTF-8",
        "WHEELFARM_BUILDER_TOKEN": farm.token,
    }


def _wait_for(what: str, condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.5)


def _chrooted_in(root: Path) -> list[int]:
    """The processes whose root directory is ``root``: the builds' processes."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "root") == str(root.resolve()):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _building(farm: RootFarm, root: Path) -> list[int]:
    """The processes of the build under way in ``root`` (once the job is claimed: not the
    builder's probe of the root's interpreter, which runs chrooted there too)."""
    if _job_states(farm).get("demo-slow") != "building":
        return []
    found = []
    for pid in _chrooted_in(root):
        try:
            if b"wheel" in Path(f"/proc/{pid}/cmdline").read_bytes():  # pip wheel, its hooks
                found.append(pid)
        except OSError:
            continue
    return found


def _mounts_seen_by(pid: int) -> set[str]:
    """The mount points process ``pid`` sees (relative to its root, as the kernel shows them)."""
    try:
        lines = Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
    except OSError:
        return set()
    return {line.split()[4] for line in lines}


def _job_states(farm: RootFarm) -> dict[str, str]:
    with farm.engine.connect() as connection:
        rows = connection.execute(select(jobs.c.project, jobs.c.state))
        return {row.project: row.state for row in rows}


@pytest.fixture
def builders() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Builder processes a test starts; whichever still runs at the end is killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("root", ["arm64"], indirect=True)  # one architecture is enough
def test_a_builder_killed_mid_build_leaves_nothing_and_the_next_one_cleans_and_builds(
    root: Path,
    root_farm: RootFarm,
    tmp_path: Path,
    builders: list[subprocess.Popen[bytes]],
) -> None:
    slow = make_sdist(tmp_path / "sdists", "demo-slow", "1.0", build_sleep=600)
    root_farm.publish(slow, "demo-slow", "1.0")
    work = tmp_path / "work"
    command, environment = _builder_command(root_farm, root, work), _environment(root_farm)
    first = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL)
    builders.append(first)

    # Mid-build: the build's processes run chrooted in the root, with its mounts (the root
    # bound read-only, /proc, /dev, /build) in their own namespace, not in the host's.
    _wait_for("the slow build to run", lambda: bool(_building(root_farm, root)))
    inside = _building(root_farm, root)[0]
    assert {"/", "/proc", "/dev", "/build", "/tmp"} <= _mounts_seen_by(inside)
    assert mounts_under(root) == []

    first.send_signal(signal.SIGKILL)
    first.wait()
    _wait_for("the build's processes to die with the builder", lambda: not _chrooted_in(root))
    assert mounts_under(root) == []

    # A mount an older builder left in the host's namespace (as one that mounted there
    # would, killed before it unmounted): the next builder removes it before it builds.
    subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
    try:
        assert mounts_under(root) == [f"{root.resolve()}/proc"]
        quick = make_sdist(tmp_path / "sdists", "demo-quick", "1.0")
        root_farm.publish(quick, "demo-quick", "1.0")
        log = tmp_path / "second.log"
        with log.open("w") as stderr:
            second = subprocess.Popen(
                command, env=environment, stdout=subprocess.DEVNULL, stderr=stderr
            )
        builders.append(second)
        _wait_for("demo-quick to be built", lambda: _job_states(root_farm)["demo-quick"] == "built")
        assert mounts_under(root) == []
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=PATIENCE) == 0, log.read_text()
        assert "unmounted 1 mounts an earlier builder left under" in log.read_text()
    finally:
        unmount_stale(root)


def test_without_root_the_builder_refuses_in_one_line_and_makes_nothing(
    root: Path, root_farm: RootFarm, tmp_path: Path
) -> None:
    """As an unprivileged user: uid 0 mapped to nobody in a user namespace of its own.

    ``unshare --user`` gives an unprivileged process (euid 65534, no capabilities on the
    host's mounts) that can still read this interpreter, wherever it is installed.
    """
    work = tmp_path / "work"
    done = subprocess.run(
        ["unshare", "--user", *_builder_command(root_farm, root, work)],
        env=_environment(root_farm),
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: building in a root file system needs root (chroot, mounts, namespaces); "
        "this is user 65534: run the builder as root"
    ]
    assert not work.exists()  # nothing made
    assert _job_states(root_farm) == {}  # it never said hello, let alone claimed
    assert mounts_under(root) == []
