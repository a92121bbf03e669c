"""``wheelfarm up`` with ``emulate`` where this machine cannot build for the architecture.

``up`` must say why in one line, how to enable it, and go on building for this machine only:
the index answers and the native builder is there. Run for real, as a child process: as an
unprivileged user (``setpriv``), and as root with a tool missing from ``PATH``. Building under
emulation end to end is the builder side's (and ``tests/emulation``'s) to prove; here no root
file system is ever made.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.fake_upstream import FakeUpstream
from wheelfarm.builder.emulation import emulation_problem

SOURCE = Path(__file__).parents[2] / "src"
NOBODY = 65534

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory an unprivileged user may write (pytest's tmp_path is root's alone)."""
    directory = Path(tempfile.mkdtemp(prefix="wheelfarm-up-"))
    directory.chmod(0o777)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def run_up(
    directory: Path,
    upstream: str,
    *,
    prefix: tuple[str, ...] = (),
    path: str | None = None,
    python: tuple[str, str] = (sys.executable, str(SOURCE)),
) -> tuple[list[str], int]:
    """Start ``wheelfarm up`` with ``WHEELFARM_EMULATE=arm64``, wait until it says it is up,
    check that the index answers, stop it; returns its output lines and exit status.
    ``python`` is the interpreter and the ``PYTHONPATH`` to run it with."""
    interpreter, python_path = python
    env = {
        **os.environ,
        "PYTHONPATH": python_path,
        "PYTHONUNBUFFERED": "1",
        "WHEELFARM_UPSTREAM": upstream,
        "WHEELFARM_PROJECTS": "nothing-here",
        "WHEELFARM_PORT": "0",
        "WHEELFARM_DATA_DIR": str(directory / "data"),
        "WHEELFARM_EMULATE": "arm64",
        "HOME": str(directory),
    }
    env.pop("WHEELFARM_DATABASE", None)  # SQLite in the data directory
    if path is not None:
        env["PATH"] = path
    process = subprocess.Popen(
        [*prefix, interpreter, "-m", "wheelfarm", "up"],
        cwd=directory,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None

    def read() -> None:
        for line in process.stdout or ():
            lines.put(line)

    reader = threading.Thread(target=read)
    reader.start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("wheelfarm is up" in s for s in seen):
            try:
                seen.append(lines.get(timeout=1).rstrip("\n"))
            except queue.Empty:
                assert process.poll() is None, "\n".join(seen)
        url = re.search(r"the index at (http://\S+?)/? ", "\n".join(seen))
        assert url is not None, "\n".join(seen)
        answered = 0
        while time.monotonic() < deadline and answered != 200:  # the publisher writes it soon
            answered = httpx.get(url[1] + "/").status_code
            time.sleep(0.2)
        assert answered == 200  # the index serves meanwhile
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        reader.join(timeout=10)
        process.stdout.close()
    while not lines.empty():
        seen.append(lines.get().rstrip("\n"))
    return seen, process.returncode


def refusals(lines: list[str]) -> list[str]:
    """The lines refusing arm64, without the time ``up`` puts before what it says as it runs."""
    said = [re.sub(r"^\d\d:\d\d:\d\d ", "", line) for line in lines]
    return [line for line in said if line.startswith("not building for arm64:")]


def as_nobody(view: Path) -> tuple[tuple[str, ...], tuple[str, str]]:
    """The prefix and interpreter that run Python as user nobody on this checkout's code.

    A checkout may sit in a directory only root can enter (``mktemp -d`` makes one), so the
    sources and the installed packages are bind-mounted under ``view`` (which nobody can
    read) in a mount namespace of the command's own; the host's mounts are untouched."""
    site_packages = Path(sysconfig.get_paths()["purelib"])
    (view / "src").mkdir()
    (view / "site").mkdir()
    script = 'mount --bind "$0" "$1/src" && mount --bind "$2" "$1/site" && shift 2 && exec "$@"'
    prefix = (
        *("unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script),
        *(str(SOURCE), str(view), str(site_packages)),
        *("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"),
    )
    return prefix, (os.path.realpath(sys.executable), f"{view}/src:{view}/site")


def test_up_as_an_unprivileged_user_says_why_in_one_line_and_builds_natively(
    shared_dir: Path,
) -> None:
    prefix, python = as_nobody(shared_dir)
    with FakeUpstream() as upstream:
        lines, status = run_up(shared_dir, upstream.simple_url, prefix=prefix, python=python)
    (line,) = refusals(lines)
    problem = emulation_problem("arm64")  # as root; as nobody the registration is the same
    if problem is None:  # emulation is registered: what stops nobody is root
        assert "needs root" in line and "run wheelfarm up as root" in line
    else:
        assert problem in line
    assert line.endswith("building for this machine only")
    assert any("building for cp3" in s for s in lines)  # the native builder is there
    assert status == 0
    assert not (shared_dir / "data" / "rootfs").exists()


def test_up_with_a_tool_missing_names_the_package_to_install(
    shared_dir: Path, tmp_path: Path
) -> None:
    if emulation_problem("arm64") is not None:
        pytest.skip(f"emulation is off here: {emulation_problem('arm64')}")
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("chroot", "unshare", "setpriv", "mount", "arch-test", "update-binfmts", "bwrap"):
        found = shutil.which(tool)
        if found is None:
            pytest.skip(f"{tool} is not installed here")
        (tools / tool).symlink_to(found)
    with FakeUpstream() as upstream:  # mmdebstrap is left out of PATH
        lines, status = run_up(shared_dir, upstream.simple_url, path=str(tools))
    (line,) = refusals(lines)
    assert line == (
        "not building for arm64: missing mmdebstrap: install it with: apt-get install "
        "mmdebstrap; building for this machine only"
    )
    assert status == 0
    assert not (shared_dir / "data" / "rootfs").exists()
