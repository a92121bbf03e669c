"""Root file systems: names, refusals that change nothing, half-made and interrupted roots,
stale mounts, packages a root lacks."""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.emulation.conftest import unavailable
from wheelfarm.builder.chroot import (
    VENV,
    mounts_under,
    probe_interpreter,
    root_probe,
    root_target,
    unmount_stale,
)
from wheelfarm.builder.rootfs import (
    LIBRARIES,
    MARKER,
    PACKAGES,
    RootfsError,
    UnknownArchitecture,
    create_rootfs,
    debian_arch,
    emulation_problem,
    is_ready,
    list_rootfs,
    missing_packages,
    remove_rootfs,
    rootfs_path,
)
from wheelfarm.targets import local_target

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mounts, chroot)")


@pytest.mark.parametrize(
    ("given", "expected"),
    [("arm64", "arm64"), ("aarch64", "arm64"), ("armhf", "armhf"), ("armv7l", "armhf"),
     ("ARMV7L", "armhf"), ("x86_64", "amd64"), ("amd64", "amd64")],
)  # fmt: skip
def test_both_spellings_of_an_architecture_name_the_debian_one(given: str, expected: str) -> None:
    assert debian_arch(given) == expected
    assert rootfs_path(Path("/d"), given) == Path(f"/d/rootfs/bookworm-{expected}")


@pytest.mark.parametrize("given", ["sparc", "", "armv8l", "arm"])
def test_an_unknown_architecture_is_refused_by_name(given: str) -> None:
    with pytest.raises(UnknownArchitecture, match=repr(given)):
        debian_arch(given)
    with pytest.raises(UnknownArchitecture):
        emulation_problem(given)


def test_the_machines_own_architecture_needs_no_emulation() -> None:
    assert emulation_problem("x86_64" if os.uname().machine == "x86_64" else "arm64") is None


def _wheelfarm(data_dir: Path, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "wheelfarm", "--data-dir", str(data_dir),
               "--upstream", "http://127.0.0.1:9/simple/", *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload,no-any-return]


@needs_root
def test_a_missing_tool_is_named_with_its_debian_package(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {"PATH": str(empty), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    done = _wheelfarm(tmp_path / "data", "rootfs", "create", "armv7l", env=env)
    assert done.returncode == 2
    assert "apt-get install" in done.stderr and "mmdebstrap" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "data" / "rootfs").exists()


def _half_made(data_dir: Path) -> tuple[Path, Path]:
    base = data_dir / "rootfs"
    broken = base / "bookworm-arm64"  # no marker: killed before it was written
    (broken / "etc").mkdir(parents=True)
    partial = base / ".bookworm-armhf.partial-123"
    (partial / "usr").mkdir(parents=True)
    return broken, partial


def test_half_made_roots_are_listed_broken_and_never_ready(tmp_path: Path) -> None:
    broken, partial = _half_made(tmp_path)
    assert not is_ready(broken) and not is_ready(partial)
    listed = {one.name: one for one in list_rootfs(tmp_path)}
    assert {name: one.ready for name, one in listed.items()} == {
        "bookworm-arm64": False,
        ".bookworm-armhf.partial-123": False,
    }
    assert listed["bookworm-arm64"].arch == "arm64"
    assert listed[".bookworm-armhf.partial-123"].arch == "armhf"


def test_remove_deletes_one_root_and_refuses_names_it_does_not_know(tmp_path: Path) -> None:
    broken, partial = _half_made(tmp_path)
    assert remove_rootfs(tmp_path, "bookworm-arm64") == broken
    assert not broken.exists() and partial.exists()
    for name in ("bookworm-arm64", "..", "../rootfs", ""):
        with pytest.raises(Exception, match="does not exist"):
            remove_rootfs(tmp_path, name)


@needs_root
def test_a_failing_mirror_is_retried_without_security_then_refused_leaving_nothing(
    tmp_path: Path,
) -> None:
    if emulation_problem("arm64") is not None:
        pytest.skip(str(emulation_problem("arm64")))
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    dead = "http://127.0.0.1:9/debian"  # nothing listens on the discard port
    (apt / "sources.list").write_text(
        f"deb {dead} bookworm main\ndeb {dead}-security bookworm-security main\n"
    )
    broken, partial = _half_made(tmp_path)
    said: list[str] = []
    with pytest.raises(RootfsError, match="mmdebstrap could not make the bookworm arm64 root"):
        create_rootfs(tmp_path, "aarch64", progress=said.append, apt_dir=apt)
    assert any("without the security suite" in line for line in said)
    assert not broken.exists()  # the half-made root was removed, never used
    assert [p.name for p in (tmp_path / "rootfs").iterdir()] == [partial.name]


@needs_root
def test_stale_mounts_under_a_root_are_unmounted(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(root / "proc")], check=True)
    try:
        assert mounts_under(root) == [str(root / "proc")]
        assert unmount_stale(root) == [str(root / "proc")]
        assert mounts_under(root) == []
    finally:
        subprocess.run(["umount", "--lazy", str(root / "proc")], capture_output=True, check=False)


@needs_root
def test_a_root_the_kernel_cannot_run_gives_one_line_not_exec_format_error(
    tmp_path: Path,
) -> None:
    python = tmp_path / VENV.lstrip("/") / "bin" / "python"
    python.parent.mkdir(parents=True)
    # bytes no binfmt handler and no loader recognises: the kernel says ENOEXEC, as it does
    # for a foreign ELF whose qemu is not registered
    python.write_bytes(b"\x00\x01\x02\x03" * 64)
    python.chmod(0o755)
    (tmp_path / MARKER).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / MARKER).write_text(json.dumps({"arch": "arm64", "distro": "bookworm"}))
    with pytest.raises(RootfsError, match="cannot run its interpreter") as refused:
        root_probe(tmp_path)
    assert "\n" not in str(refused.value) and "update-binfmts --enable" in str(refused.value)


def test_missing_packages_reads_the_roots_dpkg_status(tmp_path: Path) -> None:
    status = tmp_path / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True)
    everything = [*PACKAGES, *LIBRARIES]
    paragraphs = [
        f"Package: {name}\nStatus: install ok installed\nArchitecture: arm64\n"
        for name in everything[:-2]
    ]
    # removed, its configuration left: not installed
    paragraphs.append(f"Package: {everything[-2]}\nStatus: deinstall ok config-files\n")
    status.write_text("\n".join(paragraphs))
    assert missing_packages(tmp_path) == everything[-2:]
    assert missing_packages(tmp_path / "nothing") == everything


@needs_root
def test_ctrl_c_during_creation_stops_mmdebstrap_and_removes_the_half_made_root(
    tmp_path: Path,
) -> None:
    """SIGINT a few seconds into ``rootfs create``: exit 130, one line, nothing left behind."""
    _can_make_an_arm64_root()
    data = tmp_path / "data"
    said = tmp_path / "stderr"
    # Python leaves SIGINT ignored if it started so (as in a background job of a script, where
    # this suite may run): restore Ctrl-C's KeyboardInterrupt, as a terminal's process has it.
    command = [sys.executable, "-c", _WITH_CTRL_C, "--data-dir", str(data),
               "--upstream", "http://127.0.0.1:9/simple/", "rootfs", "create", "arm64"]  # fmt: skip
    environment = {"PATH": os.environ["PATH"], "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    with said.open("w") as stderr:
        process = subprocess.Popen(
            command, env=environment, stdout=subprocess.DEVNULL, stderr=stderr
        )
    partial = data / "rootfs" / f".bookworm-arm64.partial-{process.pid}"
    try:
        deadline = time.monotonic() + 300
        while not (partial.is_dir() and any(partial.iterdir())):  # mmdebstrap at work
            assert process.poll() is None, said.read_text()
            assert time.monotonic() < deadline, "mmdebstrap never started"
            time.sleep(0.2)
        time.sleep(3)  # a few seconds into it: packages being fetched or unpacked
        helpers = _processes_mentioning(str(partial))
        assert helpers  # mmdebstrap and its apt, in a process group of their own
        assert all(os.getpgid(pid) != os.getpgid(process.pid) for pid in helpers)
        process.send_signal(signal.SIGINT)  # to wheelfarm alone, as a terminal's would not be
        assert process.wait(timeout=300) == 130
    finally:
        if process.poll() is None:
            process.kill()
    lines = said.read_text().strip().splitlines()
    assert lines[-1] == "interrupted: the half-made bookworm arm64 root was removed"
    assert list((data / "rootfs").iterdir()) == []
    assert _processes_mentioning(str(partial)) == []
    assert mounts_under(data) == []


def test_up_stopped_while_making_its_root_stops_mmdebstrap_and_builds_nothing_there(
    tmp_path: Path,
) -> None:
    """``up`` makes an emulated builder's root in the background: stopping ``up`` meanwhile
    stops mmdebstrap too, removes the half-made root, and no builder starts for it."""
    _can_make_an_arm64_root()
    data = tmp_path / "data"
    said = tmp_path / "output"
    environment = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "WHEELFARM_DATA_DIR": str(data),
        "WHEELFARM_UPSTREAM": "http://127.0.0.1:9/simple/",  # nothing answers: nothing to build
        "WHEELFARM_PROJECTS": "",
        "WHEELFARM_PORT": "0",
        "WHEELFARM_EMULATE": "arm64",
    }
    with said.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-c", _WITH_CTRL_C, "up"],
            cwd=tmp_path,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    partial = data / "rootfs" / f".bookworm-arm64.partial-{process.pid}"
    try:
        deadline = time.monotonic() + 300
        while not (partial.is_dir() and any(partial.iterdir())):  # mmdebstrap at work
            assert process.poll() is None, said.read_text()
            assert time.monotonic() < deadline, "mmdebstrap never started"
            time.sleep(0.2)
        time.sleep(3)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=300) == 0, said.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    shown = said.read_text()
    assert "not building for arm64: up stopped while the root was being made" in shown, shown
    assert "building for cp311-cp311-linux_aarch64" not in shown
    assert list((data / "rootfs").iterdir()) == []
    assert _processes_mentioning(str(partial)) == []
    assert mounts_under(data) == []


def _can_make_an_arm64_root() -> None:
    """Fail (in CI) or skip, with the reason, where mmdebstrap cannot make an arm64 root."""
    problem = emulation_problem("arm64")
    if problem is not None:
        unavailable(problem)
    if shutil.which("mmdebstrap") is None:
        unavailable("mmdebstrap is missing: apt-get install mmdebstrap")


_WITH_CTRL_C = (
    "import signal, sys\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "from wheelfarm.cli.main import main\n"
    "main(sys.argv[1:])\n"
)


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@needs_root
def test_a_ready_root_that_cannot_get_missing_packages_is_still_used_and_says_so(
    tmp_path: Path,
) -> None:
    root = rootfs_path(tmp_path, "arm64")
    for directory in ("proc", "sys", "dev", "tmp", "var/lib/dpkg", VENV.lstrip("/") + "/bin"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    (root / VENV.lstrip("/") / "bin" / "python").write_text("")
    (root / MARKER).parent.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text(json.dumps({"arch": "arm64", "distro": "bookworm"}))
    (root / "var/lib/dpkg/status").write_text("")  # nothing installed, and no apt to install it
    said: list[str] = []
    assert create_rootfs(tmp_path, "arm64", progress=said.append) == root
    assert is_ready(root)
    assert any("lacks" in line and "keeps lacking them" in line for line in said), said
    assert mounts_under(root) == []


def test_the_interpreter_probe_names_pips_version_for_the_log_header() -> None:
    """The probe a root's interpreter runs inside its root, run here natively: the header of an
    emulated build's log takes pip's version from it (the interpreter runs only in its root)."""
    found = probe_interpreter([sys.executable], {"PATH": "/usr/bin:/bin"}, "this machine")
    assert (found["pip"], found["version"]) == (version("pip"), platform.python_version())
    assert root_target(Path("/"), found) == local_target()
