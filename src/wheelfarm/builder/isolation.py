"""How a build is kept apart from the builder machine: one strategy, chosen once.

An :class:`Isolation` turns the build's command into the argv that runs it confined, says its
name, and gives the line the build's log opens with when the build is *not* confined. The
sandbox (:func:`wheelfarm.builder.sandbox.run_build`) only calls ``wrap``; adding a way to
isolate (a foreign root file system run under qemu user emulation through ``chroot``, say) is a
new class here, not an edit there.

- :class:`Bubblewrap`: the build sees only what it needs. Read-only: the system's programs and
  libraries (``/usr``, ``/lib*``, ``/bin``, ``/sbin``), the few files of ``/etc`` a build reads
  (:data:`ETC_READ_ONLY`: certificates, resolver, loader cache, pip's configuration, the user
  database; never ``/etc/shadow`` and the like), and the interpreter's own prefix when it
  lives elsewhere (a pyenv under ``/root/.pyenv``: exactly that prefix, nothing else of
  ``/root``). Writable: only the build directory. Everything else (the master's data
  directory, ``/root``, ``/home``, ``/tmp``, ``/var``, ``/run``) is absent; the root is
  read-only; ``/dev`` and ``/proc`` are fresh, in a new PID namespace (no other process, the
  builder's memory included, is visible); IPC and hostname namespaces are new, every
  capability is dropped, and the build dies with its parent. The network stays shared, since
  pip must reach the index.
- :class:`NoIsolation`: the build runs as the builder's user, unwrapped (the scrubbed
  environment and resource limits still apply); it can read whatever that user can. A builder
  refuses to use it unless the operator allowed unsandboxed builds
  (``allow_unsandboxed_builds``); its log says so.

:func:`choose_isolation` probes for the best one that works on this machine.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

__all__ = [
    "ETC_READ_ONLY",
    "SYSTEM_READ_ONLY",
    "Bubblewrap",
    "Isolation",
    "NoIsolation",
    "bwrap_available",
    "choose_isolation",
    "usable_bwrap",
]

#: The system's programs and libraries: bound read-only (a symlink, as in a merged /usr, is
#: recreated as the same symlink).
SYSTEM_READ_ONLY = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
#: What a build reads of /etc (globs; those that exist are bound read-only, nothing else).
ETC_READ_ONLY = (
    "/etc/ssl", "/etc/ca-certificates", "/etc/ca-certificates.conf", "/etc/pki",
    "/etc/pip.conf", "/etc/xdg/pip",
    "/etc/resolv.conf", "/etc/hosts", "/etc/host.conf", "/etc/nsswitch.conf", "/etc/gai.conf",
    "/etc/services", "/etc/protocols",
    "/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
    "/etc/passwd", "/etc/group", "/etc/localtime", "/etc/os-release", "/etc/mime.types",
    "/etc/python3*",
)  # fmt: skip

_BWRAP_OPTIONS = (
    "--dev", "/dev",
    "--proc", "/proc",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-cgroup-try",
    "--cap-drop", "ALL",
    "--die-with-parent",
    "--new-session",
)  # fmt: skip

# Prints where the interpreter lives: its prefixes, and the real directory of its binary.
_WHERE = (
    "import json, os, sys; print(json.dumps([sys.prefix, sys.base_prefix, sys.exec_prefix,"
    " sys.base_exec_prefix, os.path.dirname(os.path.realpath(sys.executable))]))"
)

_NO_BWRAP_NOTE = (
    b"[sandbox: bwrap is not installed or cannot create namespaces here; building without it,"
    b" as the operator allowed (allow_unsandboxed_builds)]\n"
)


class Isolation(Protocol):
    """A way to run a build's command apart from the rest of the machine."""

    @property
    def name(self) -> str:
        """A short name for logs and status pages."""
        ...

    @property
    def confined(self) -> bool:
        """Whether the build is kept from the machine's files (``BuildResult.sandboxed``)."""
        ...

    @property
    def notice(self) -> bytes:
        """A line for the top of the build's log (empty when there is nothing to warn of)."""
        ...

    def wrap(self, command: Sequence[str], directory: Path) -> list[str]:
        """The argv that runs ``command`` isolated, with only ``directory`` writable."""
        ...


class NoIsolation:
    """The build runs unwrapped; its log opens with a line saying so."""

    name = "none"
    confined = False
    notice = _NO_BWRAP_NOTE

    def wrap(self, command: Sequence[str], directory: Path) -> list[str]:
        return list(command)


class Bubblewrap:
    """The build runs under bubblewrap (``bwrap``, given by its absolute path).

    ``read_only`` adds paths the build may read (an operator's extra toolchain, say).
    """

    name = "bubblewrap"
    confined = True
    notice = b""

    def __init__(self, bwrap: str, read_only: Sequence[str] = ()) -> None:
        self.bwrap = bwrap
        self.read_only = tuple(read_only)

    def wrap(self, command: Sequence[str], directory: Path) -> list[str]:
        # the interpreter's prefixes, and the program itself if it lies outside them
        interpreter = [*_interpreter_roots(command[0]), command[0]] if command else []
        return [
            self.bwrap,
            *_system_binds(),
            *_read_only_binds([*interpreter, *self.read_only]),
            "--bind", str(directory), str(directory),
            *_BWRAP_OPTIONS,
            "--remount-ro", "/",
            "--chdir", str(directory),
            "--", *command,
        ]  # fmt: skip


def _system_binds() -> list[str]:
    """The read-only system part: programs, libraries, and the needed files of /etc."""
    arguments: list[str] = []
    for path in SYSTEM_READ_ONLY:
        if os.path.islink(path):
            arguments += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            arguments += ["--ro-bind", path, path]
    for pattern in ETC_READ_ONLY:
        for path in sorted(glob.glob(pattern)):
            arguments += ["--ro-bind", path, path]
    return arguments


def _read_only_binds(paths: Sequence[str]) -> list[str]:
    """Read-only binds of ``paths`` not already under a bound system path (nor ``/``)."""
    system = tuple(p for p in SYSTEM_READ_ONLY if os.path.isdir(p))
    chosen: list[str] = []
    for path in sorted({os.path.normpath(p) for p in paths if os.path.isabs(p)}):
        if path == "/" or not os.path.exists(path):
            continue
        inside = [*system, *chosen]
        if any(path == root or path.startswith(root + "/") for root in inside):
            continue
        chosen.append(path)
    return [argument for path in chosen for argument in ("--ro-bind", path, path)]


@functools.lru_cache(maxsize=16)
def _interpreter_roots(python: str) -> tuple[str, ...]:
    """Where the interpreter ``python`` lives (a venv and its base), and the builder's own.

    The builder's own interpreter counts too: a script named as the interpreter runs under it.
    """
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    try:
        found = subprocess.run(
            [python, "-I", "-c", _WHERE],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={"PATH": "/usr/bin:/bin"},
        )
        if found.returncode == 0:
            roots.update(str(p) for p in json.loads(found.stdout))
    except (OSError, subprocess.SubprocessError, ValueError):
        pass  # not a Python we can ask: its own file is still bound
    return tuple(sorted(roots))


def choose_isolation() -> Isolation:
    """The best isolation that works on this machine: bubblewrap if it can run, else none."""
    bwrap = usable_bwrap()
    return Bubblewrap(bwrap) if bwrap is not None else NoIsolation()


def bwrap_available() -> bool:
    """Whether bubblewrap is installed and can make its namespaces here.

    Containers often forbid user namespaces, so being installed is not enough: the probe runs
    ``true`` with the same options a build gets.
    """
    return usable_bwrap() is not None


def usable_bwrap() -> str | None:
    """The absolute path of a bwrap that passed the probe, else ``None``."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None
    bwrap = os.path.abspath(bwrap)
    true = shutil.which("true") or "/bin/true"
    try:
        with tempfile.TemporaryDirectory(prefix="wheelfarm-probe-") as directory:
            probe = subprocess.run(
                Bubblewrap(bwrap).wrap([true], Path(directory)),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=30,
                check=False,
            )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return bwrap if probe.returncode == 0 else None
