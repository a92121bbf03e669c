"""Architectures by name, and whether this machine can run another one's programs.

A builder for a platform the machine is not (an ``arm64`` root on an ``x86_64`` host, say) runs
that platform's interpreter under qemu user-mode emulation: the kernel's ``binfmt_misc`` hands
every foreign ELF program to ``qemu-<arch>``. Debian's ``qemu-user-static`` ships the
emulators and ``binfmt-support`` registers them, except in containers, where the package's
install script skips registration: :func:`enable_emulation` does it then (it mounts
``binfmt_misc`` if needed). :func:`emulation_problem` says, in one line, why a machine cannot.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from wheelfarm.errors import WheelfarmError

__all__ = [
    "ARCHES",
    "Arch",
    "RootfsError",
    "UnknownArchitecture",
    "debian_arch",
    "emulation_problem",
    "enable_emulation",
    "host_arch",
    "require_tools",
]

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")


class RootfsError(WheelfarmError):
    """A root file system cannot be made, used or removed here; the message says why and how."""


class UnknownArchitecture(RootfsError):
    """An architecture name we do not build for."""

    def __init__(self, name: str) -> None:
        known = ", ".join(f"{a.debian}/{a.machine}" for a in ARCHES.values())
        super().__init__(f"architecture {name!r} is not one of: {known}")
        self.name = name


@dataclass(frozen=True)
class Arch:
    """One architecture in its two spellings, and the emulator that runs it."""

    debian: str  # dpkg's name: arm64
    machine: str  # Python's (the wheel platform's suffix): aarch64
    qemu: str  # the binfmt entry and emulator: qemu-aarch64


ARCHES: dict[str, Arch] = {
    arch.debian: arch
    for arch in (
        Arch("arm64", "aarch64", "qemu-aarch64"),
        Arch("armhf", "armv7l", "qemu-arm"),
        Arch("amd64", "x86_64", "qemu-x86_64"),
    )
}
_BY_MACHINE = {arch.machine: arch for arch in ARCHES.values()}


def debian_arch(name: str) -> str:
    """The Debian name of an architecture given in Debian's or Python's spelling.

    ``arm64``/``aarch64`` -> ``arm64``; ``armhf``/``armv7l`` -> ``armhf``; ``amd64``/``x86_64``
    -> ``amd64``. Raises :class:`UnknownArchitecture` for anything else.
    """
    key = name.strip().lower()
    if key in ARCHES:
        return key
    if key in _BY_MACHINE:
        return _BY_MACHINE[key].debian
    raise UnknownArchitecture(name)


def host_arch() -> str | None:
    """This machine's Debian architecture (None: one we do not know)."""
    return _BY_MACHINE[platform.machine()].debian if platform.machine() in _BY_MACHINE else None


def _binfmt_enabled(qemu: str) -> bool:
    try:
        return (BINFMT_DIR / qemu).read_text().splitlines()[0].strip() == "enabled"
    except (OSError, IndexError):
        return False


def _kernel_has_binfmt() -> bool:
    try:
        return "binfmt_misc" in Path("/proc/filesystems").read_text()
    except OSError:
        return False


#: The programs making and running a root, with the Debian package that installs each.
TOOLS = {
    "mmdebstrap": "mmdebstrap",
    "arch-test": "arch-test",
    "update-binfmts": "binfmt-support",
    "chroot": "coreutils",
    "unshare": "util-linux",
    "setpriv": "util-linux",
    "mount": "mount",
}


def require_tools(*names: str) -> None:
    """Raise :class:`RootfsError` naming the Debian package of the first program missing."""
    missing = sorted({TOOLS[name] for name in names if shutil.which(name) is None})
    if missing:
        raise RootfsError(
            f"missing {', '.join(n for n in names if shutil.which(n) is None)}: "
            f"install it with: apt-get install {' '.join(missing)}"
        )


def emulation_problem(arch: str) -> str | None:
    """Why this machine cannot run ``arch``'s programs, in one line; None when it can.

    None also when it can once :func:`enable_emulation` has registered the emulator (which
    needs root). Raises :class:`UnknownArchitecture` for a name :func:`debian_arch` refuses.
    """
    found = ARCHES[debian_arch(arch)]
    if found.debian == host_arch():
        return None
    if _binfmt_enabled(found.qemu):
        return None
    if not _kernel_has_binfmt():
        return f"the kernel has no binfmt_misc, so {found.debian} programs cannot be emulated here"
    if shutil.which(f"{found.qemu}-static") is None:
        return f"{found.qemu}-static is missing: apt-get install qemu-user-static binfmt-support"
    if shutil.which("update-binfmts") is None:
        return f"{found.qemu} is not registered and update-binfmts is missing: " + (
            "apt-get install binfmt-support"
        )
    if os.geteuid() != 0:
        return (
            f"{found.qemu} is not registered with binfmt_misc; as root run: "
            f"update-binfmts --enable {found.qemu}"
        )
    return None


def enable_emulation(arch: str) -> None:
    """Register ``arch``'s emulator with binfmt_misc if it is not (mounting it if needed).

    Raises :class:`RootfsError` with the one-line reason when the machine cannot.
    """
    problem = emulation_problem(arch)
    if problem is not None:
        raise RootfsError(problem)
    found = ARCHES[debian_arch(arch)]
    if found.debian == host_arch() or _binfmt_enabled(found.qemu):
        return
    done = subprocess.run(
        ["update-binfmts", "--enable", found.qemu],
        capture_output=True,
        text=True,
        check=False,
    )
    if not _binfmt_enabled(found.qemu):
        said = (done.stderr or done.stdout).strip().splitlines()
        raise RootfsError(
            f"update-binfmts --enable {found.qemu} did not register it"
            + (f": {said[-1]}" if said else "")
        )
