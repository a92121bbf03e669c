"""Distro package lists: the files they are loaded from, the ones we ship, and a snapshot.

A list names the packages a target's base image has installed, one a line, so that they are not
shown to users as something to ``apt install``. It must come from a real system or a real
archive, never from a guess: see ``data/distros/README.md`` for where each shipped list came from.
"""

from __future__ import annotations

import re
import subprocess
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from wheelfarm.errors import WheelfarmError

__all__ = [
    "DistroFileError",
    "PackageList",
    "check_distro_name",
    "parse_package_list",
    "read_package_list",
    "shipped_lists",
    "snapshot",
]

_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+")  # Debian policy 5.6.1
_DISTRO = re.compile(r"[a-z0-9][a-z0-9+._-]{0,99}")


class DistroFileError(WheelfarmError):
    """A package list that cannot be loaded; nothing was changed."""


def check_distro_name(name: str) -> str:
    if not _DISTRO.fullmatch(name):
        raise DistroFileError(
            f"distro name {name!r}: use lower-case letters, digits and . + - _ (at most 100)"
        )
    return name


def parse_package_list(text: str, source: str) -> list[str]:
    """Package names, one a line; blank lines and ``#`` comments are allowed.

    A trailing ``:arch`` qualifier is dropped (``libc6:armhf`` -> ``libc6``). The first bad line
    is an error that names the file and the line number.
    """
    packages: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name = line.split(":", 1)[0] if ":" in line else line
        if len(name) > 100 or not _PACKAGE.fullmatch(name):
            raise DistroFileError(
                f"{source}, line {number}: {raw.strip()!r} is not a Debian package name"
            )
        packages.append(name)
    return packages


def shipped_lists() -> dict[str, Path]:
    """The lists that ship with wheelfarm, by distro name (their file stem)."""
    folder = resources.files("wheelfarm") / "data" / "distros"
    found: dict[str, Path] = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".txt"):
            found[entry.name.removesuffix(".txt")] = Path(str(entry))
    return dict(sorted(found.items()))


class PackageList(NamedTuple):
    """A distro's package list as read from a file."""

    name: str  # the distro name it suggests (the file name without .txt)
    packages: list[str]
    source: str  # the path it was read from


def read_package_list(file: str) -> PackageList:
    """The package list in a path, or in a shipped list of that name."""
    path = Path(file)
    if not path.exists() and file in shipped_lists():
        path = shipped_lists()[file]
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        shipped = ", ".join(shipped_lists()) or "none"
        raise DistroFileError(
            f"{file}: cannot read it ({error}); shipped lists: {shipped}"
        ) from error
    return PackageList(
        path.name.removesuffix(".txt"), parse_package_list(text, str(path)), str(path)
    )


def snapshot() -> list[str]:
    """The packages installed on this machine (``dpkg-query -W``), sorted, for a list file."""
    try:
        listing = subprocess.run(
            ["dpkg-query", "-W", "-f=${db:Status-Status} ${Package}\\n"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError) as error:
        raise DistroFileError(f"dpkg-query failed (is this a Debian system?): {error}") from error
    installed = {
        fields[1]
        for line in listing.splitlines()
        if len(fields := line.split()) == 2 and fields[0] == "installed"
    }
    return sorted(installed)
