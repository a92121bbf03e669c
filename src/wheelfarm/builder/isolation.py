"""How a build is kept apart from the builder machine: one strategy, chosen once.

An :class:`Isolation` turns the build's command into the argv that runs it confined, says its
name, and gives the line the build's log opens with when the build is *not* confined. The
sandbox (:func:`wheelfarm.builder.sandbox.run_build`) only calls ``wrap``; adding a way to
isolate (a foreign root file system run under qemu user emulation through ``chroot``, say) is a
new class here, not an edit there.

- :class:`Bubblewrap`: the root file system read-only, only the build directory writable, fresh
  ``/dev``, ``/proc`` and PID namespace, killed with its parent. The network stays shared, since
  pip must reach the index.
- :class:`NoIsolation`: the build runs as the builder's user, unwrapped (the scrubbed
  environment and resource limits still apply); its log says so.

:func:`choose_isolation` probes for the best one that works on this machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

__all__ = [
    "Bubblewrap",
    "Isolation",
    "NoIsolation",
    "bwrap_available",
    "choose_isolation",
    "usable_bwrap",
]

_BWRAP_OPTIONS = (
    "--dev", "/dev",
    "--proc", "/proc",
    "--unshare-pid",
    "--die-with-parent",
    "--new-session",
)  # fmt: skip

_NO_BWRAP_NOTE = (
    b"[sandbox: bwrap is not installed or cannot create namespaces here; building without it]\n"
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
    """The build runs under bubblewrap (``bwrap``, given by its absolute path)."""

    name = "bubblewrap"
    confined = True
    notice = b""

    def __init__(self, bwrap: str) -> None:
        self.bwrap = bwrap

    def wrap(self, command: Sequence[str], directory: Path) -> list[str]:
        return [
            self.bwrap, "--ro-bind", "/", "/", "--bind", str(directory), str(directory),
            *_BWRAP_OPTIONS, "--", *command,
        ]  # fmt: skip


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
    try:
        probe = subprocess.run(
            [bwrap, "--ro-bind", "/", "/", *_BWRAP_OPTIONS, "true"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return bwrap if probe.returncode == 0 else None
