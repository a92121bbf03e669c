"""Root file systems for emulated builders: made, listed and removed as data.

A root is a minimal Debian system of one architecture (``mmdebstrap --variant=apt``) with a C
toolchain, Python's headers and a build venv at :data:`~wheelfarm.builder.chroot.VENV` whose
pip, setuptools and wheel are current (Debian 12's pip cannot build setup.py-only sdists). It
lives at ``<data_dir>/rootfs/<distro>-<arch>/``.

Creation is all or nothing. The root is made under a hidden temporary name, its completion
marker (:data:`MARKER`, which records what it is) is written last, and only then is it renamed
into place; a root without its marker (killed half-way, damaged) is never used: it is listed as
broken and :func:`create_rootfs` rebuilds it. Interrupted (Ctrl-C: ``KeyboardInterrupt``),
creation stops mmdebstrap, which runs in its own process group, and removes the half-made root
before the interruption goes on. The packages come from this machine's own apt
sources (:func:`apt_sources`), their suites renamed for the distro asked for; if the mirror
fails, creation is tried once more without the security suite, and the marker records that.
The host's CA bundle and its system-wide pip configuration (never a user's) are copied in, so
pip inside reaches the index the host reaches.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wheelfarm.builder.chroot import VENV, root_command, root_environment, unmount_stale
from wheelfarm.builder.emulation import (
    ARCHES,
    RootfsError,
    UnknownArchitecture,
    debian_arch,
    emulation_problem,
    enable_emulation,
    host_arch,
    require_tools,
)
from wheelfarm.builder.sources import APT_DIR, apt_sources, config_files
from wheelfarm.errors import NotFound

__all__ = [
    "LIBRARIES",
    "MARKER",
    "PACKAGES",
    "RootInfo",
    "RootfsError",
    "UnknownArchitecture",
    "create_rootfs",
    "debian_arch",
    "emulation_problem",
    "is_ready",
    "list_rootfs",
    "missing_packages",
    "remove_rootfs",
    "rootfs_path",
]

#: Written last, inside the root: what it is. A root without it is incomplete.
MARKER = "etc/wheelfarm-rootfs.json"
#: What a root holds beyond the apt variant: Python with venv and headers, and a C toolchain.
PACKAGES = ("python3", "python3-venv", "python3-pip", "python3-dev", "gcc", "libc6-dev")
#: Extra libraries with headers, so sdists linking them build: the tests link zlib, the default
#: projects libyaml (pyyaml) and libmemcached (pylibmc, whose wheels then need libmemcached11,
#: outside Debian's base list: the apt line users see). A ready root lacking one that a newer
#: wheelfarm added gets it installed by :func:`create_rootfs` (seconds, not a new root).
LIBRARIES = ("zlib1g-dev", "libyaml-dev", "libmemcached-dev")
_NAME = re.compile(r"[a-z0-9][a-z0-9.+-]*")
_PARTIAL = ".partial-"

Progress = Callable[[str], None]


def rootfs_path(data_dir: Path, arch: str, distro: str = "bookworm") -> Path:
    """Where the root for ``arch`` (either spelling) and ``distro`` lives under ``data_dir``."""
    if not _NAME.fullmatch(distro):
        raise RootfsError(f"distro {distro!r} is not a Debian suite name (e.g. bookworm)")
    return data_dir / "rootfs" / f"{distro}-{debian_arch(arch)}"


def _marker(path: Path) -> dict[str, object] | None:
    try:
        found = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def is_ready(path: Path) -> bool:
    """Whether ``path`` is a complete root: its marker and its build interpreter are there."""
    return _marker(path) is not None and (path / VENV.lstrip("/") / "bin" / "python").exists()


@dataclass(frozen=True)
class RootInfo:
    """One root under a data directory, as ``rootfs list`` shows it."""

    name: str
    path: Path
    arch: str | None
    distro: str | None
    size: int  # bytes on disk (apparent sizes of its files)
    ready: bool
    note: str  # e.g. "without the security suite", "incomplete: will be rebuilt"


def list_rootfs(data_dir: Path) -> list[RootInfo]:
    """Every root (and half-made one) under ``data_dir``, by name."""
    base = data_dir / "rootfs"
    if not base.is_dir():
        return []
    found = []
    for path in sorted(base.iterdir()):
        if not path.is_dir() or path.is_symlink():
            continue
        marker = _marker(path) or {}
        stem = path.name.split(_PARTIAL)[0].lstrip(".")
        distro, _, arch = stem.rpartition("-")
        ready = is_ready(path) and not path.name.startswith(".")
        note = str(marker.get("note", "")) if ready else "incomplete: will be rebuilt"
        found.append(
            RootInfo(
                path.name,
                path,
                str(marker.get("arch", arch)) or None,
                str(marker.get("distro", distro)) or None,
                _size(path),
                ready,
                note,
            )
        )
    return found


def _size(path: Path) -> int:
    total = 0
    for directory, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(directory, name)).st_size
    return total


def remove_rootfs(data_dir: Path, name: str) -> Path:
    """Remove the root ``name`` (as ``rootfs list`` shows it); raises NotFound if none."""
    base = data_dir / "rootfs"
    path = base / name
    if "/" in name or name in ("", ".", "..") or not path.is_dir() or path.is_symlink():
        raise NotFound(f"root file system {name!r} under {base}")
    _remove(path)
    return path


def _remove(path: Path) -> None:
    """Unmount anything left under ``path``, then delete it (never through a mount)."""
    unmount_stale(path)
    shutil.rmtree(path)


def create_rootfs(
    data_dir: Path,
    arch: str,
    distro: str = "bookworm",
    progress: Progress | None = None,
    *,
    apt_dir: Path = APT_DIR,
) -> Path:
    """Make the root for ``arch`` and ``distro`` and return its path (at once if it is ready).

    A ready root lacking packages this version adds (:func:`missing_packages`) gets them
    installed; if that fails (offline, not root) ``progress`` says so and the root is used as
    it is. Raises :class:`RootfsError` with a one-line reason, before changing anything, when it
    cannot: not root, no binfmt_misc or emulator, a tool missing (naming its Debian package);
    and, having removed what it made, when the mirror fails even without the security suite.
    ``apt_dir`` is where the apt sources to fetch from are read (this machine's by default).
    """
    say = progress or (lambda _message: None)
    path = rootfs_path(data_dir, arch, distro)
    arch = debian_arch(arch)
    if is_ready(path):
        missing = missing_packages(path)
        if missing:
            try:
                if os.geteuid() != 0:
                    raise RootfsError("installing packages needs root")
                enable_emulation(arch)
                _add_packages(path, missing, say)
            except RootfsError as error:  # still a working root: sdists linking them fail
                say(f"{path.name} lacks {', '.join(missing)} and keeps lacking them: {error}")
        return path
    _check_can_create(arch)
    enable_emulation(arch)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}{_PARTIAL}*"):
        say(f"removing the incomplete {stale.name}")
        _remove(stale)
    if path.exists():
        say(f"removing the incomplete {path.name}")
        _remove(path)
    partial = path.parent / f".{path.name}{_PARTIAL}{os.getpid()}"
    started = time.monotonic()
    try:
        note = _bootstrap(partial, arch, distro, apt_sources(distro, apt_dir), say)
        _prepare(partial, say)
        (partial / "build").mkdir(exist_ok=True)
        marker = {
            "arch": arch,
            "machine": ARCHES[arch].machine,
            "distro": distro,
            "created": time.time(),
            "seconds": round(time.monotonic() - started, 1),
            "note": note,
        }
        (partial / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        partial.rename(path)
    except BaseException:
        if partial.exists():
            _remove(partial)
        raise
    say(f"{path.name} ready in {time.monotonic() - started:.0f} s")
    return path


def missing_packages(path: Path) -> list[str]:
    """What of :data:`PACKAGES` and :data:`LIBRARIES` the root at ``path`` has not installed."""
    try:
        status = (path / "var/lib/dpkg/status").read_text(errors="replace")
    except OSError:
        return [*PACKAGES, *LIBRARIES]
    installed = set()
    for paragraph in status.split("\n\n"):
        fields = dict(
            line.split(": ", 1)
            for line in paragraph.splitlines()
            if ": " in line and line[0] != " "
        )
        if fields.get("Status") == "install ok installed" and "Package" in fields:
            installed.add(fields["Package"])
    return [name for name in (*PACKAGES, *LIBRARIES) if name not in installed]


def _add_packages(path: Path, names: list[str], say: Progress) -> None:
    """Install ``names`` into the ready root at ``path`` with its own apt (under emulation)."""
    say(f"installing {', '.join(names)} into {path.name} (added since it was made)")
    apt = ["apt-get", "-q", "-y"]
    _in_root(path, [*apt, "update"])
    _in_root(path, [*apt, "install", "--no-install-recommends", *names])
    _in_root(path, [*apt, "clean"])
    for lists in (path / "var/lib/apt/lists").glob("*_*"):  # as mmdebstrap leaves it: no lists
        lists.unlink(missing_ok=True)


def _check_can_create(arch: str) -> None:
    if os.geteuid() != 0:
        raise RootfsError("making a root file system needs root (mmdebstrap, chroot, mounts)")
    tools = ["mmdebstrap", "chroot", "unshare", "setpriv", "mount"]
    if arch != host_arch():
        tools += ["arch-test", "update-binfmts"]
    require_tools(*tools)
    problem = emulation_problem(arch)
    if problem is not None:
        raise RootfsError(problem)


def _bootstrap(partial: Path, arch: str, distro: str, sources: list[str], say: Progress) -> str:
    """Run mmdebstrap into ``partial``; retry once without the security suite. Returns a note."""
    if not sources:
        raise RootfsError("no deb entries in this machine's apt sources to fetch packages from")
    attempts = [(sources, "")]
    without = [line for line in sources if not _is_security(line)]
    if without != sources:
        attempts.append((without, "without the security suite (the mirror failed with it)"))
    failure = ""
    for lines, note in attempts:
        if note:
            say(f"mmdebstrap failed ({failure}); trying again {note}")
        if partial.exists():
            _remove(partial)
        failure = _mmdebstrap(partial, arch, distro, lines, say)
        if not failure:
            return note
    raise RootfsError(f"mmdebstrap could not make the {distro} {arch} root: {failure}")


def _is_security(line: str) -> bool:
    return any(word.endswith("-security") for word in line.split())


def _mmdebstrap(partial: Path, arch: str, distro: str, sources: list[str], say: Progress) -> str:
    """Run mmdebstrap; empty string when it succeeded, else its last error line."""
    command = [
        "mmdebstrap", "--variant=apt", f"--arch={arch}", "--mode=root", "--format=directory",
        f"--include={','.join(PACKAGES + LIBRARIES)}",
        distro, str(partial), *sources,
    ]  # fmt: skip
    say(f"mmdebstrap {distro} {arch} into {partial.name} (a few minutes)")
    # Its own process group: a Ctrl-C at the terminal reaches us alone, and we stop it in order
    # (:func:`_stop`) before the half-made root is removed.
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        process_group=0,
    )
    assert process.stdout is not None  # asked for
    errors: list[str] = []  # apt's reasons (the line after "Err:") first, then E: lines
    after_err = False
    try:
        with process.stdout:
            for line in process.stdout:
                line = line.rstrip()
                if line.startswith("I: "):
                    say(line[3:])
                elif after_err and line.startswith(" "):
                    errors.insert(0, line.strip())
                elif line.startswith("E: "):
                    errors.append(line)
                after_err = line.startswith("Err:")
        returncode = process.wait()
    except BaseException:
        _stop(process)
        raise
    if returncode != 0:
        return errors[0] if errors else f"exit status {returncode}"
    return ""


def _stop(process: subprocess.Popen[str], grace: float = 60) -> None:
    """Stop mmdebstrap and everything it started (its process group), then reap it.

    SIGTERM first: mmdebstrap then unmounts what it mounted in the root and kills its apt and
    dpkg; after ``grace`` seconds the group is killed. What it still left mounted,
    :func:`_remove` unmounts before deleting.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # what it started and left behind


def _prepare(partial: Path, say: Progress) -> None:
    """Copy the host's CA bundle and pip configuration in; make the build venv, pip current."""
    say("copying the host's CA bundle and system pip configuration")
    for host_file in config_files():
        target = partial / str(host_file).lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():
            target.unlink()
        shutil.copyfile(host_file, target)
    say(f"making the build venv at {VENV}")
    _in_root(partial, ["/usr/bin/python3", "-m", "venv", "--copies", VENV])
    say("upgrading pip, setuptools and wheel in the venv")
    _in_root(
        partial,
        [f"{VENV}/bin/python", "-m", "pip", "install", "--upgrade", "--no-cache-dir",
         "--disable-pip-version-check", "--progress-bar", "off", "pip", "setuptools", "wheel"],
    )  # fmt: skip


def _in_root(root: Path, command: list[str]) -> None:
    """Run ``command`` as root inside ``root`` (writable); RootfsError with its last line."""
    environment = {**root_environment(root, "/root"), "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(
        root_command(root, command, environment, read_only=False, user=None),
        capture_output=True,
        text=True,
        env={"LANG": "C.UTF-8"},
        check=False,
    )
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise RootfsError(
            f"{' '.join(command[:4])} failed inside the root: "
            + (said[-1] if said else f"exit status {done.returncode}")
        )
