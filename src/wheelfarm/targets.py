"""Build targets: a Python interpreter, an ABI and a platform, as ``packaging.tags`` sees them.

A target is named like a wheel's tag triple (``cp311-cp311-linux_armv7l``). It also lists the
platforms whose wheels install on it (a ``linux_x86_64`` machine with glibc 2.36 takes
``manylinux_2_17_x86_64`` wheels too), because a release needs no build for a target that a
wheel we already hold installs on.
"""

from __future__ import annotations

import re
import sysconfig
from dataclasses import dataclass
from functools import lru_cache

from packaging import tags
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag

from wheelfarm.errors import WheelfarmError

__all__ = [
    "InvalidTarget",
    "Target",
    "architecture_words",
    "describe_target",
    "distro_words",
    "local_target",
    "machine_of",
]

_NAME = re.compile(
    r"(?P<interpreter>cp(?P<major>3)(?P<minor>\d{1,2}))-(?P<abi>[a-z0-9_]+)-(?P<platform>[a-z0-9_]+)"
)


class InvalidTarget(WheelfarmError):
    """A target name or platform we cannot build for."""

    def __init__(self, value: str, reason: str) -> None:
        super().__init__(f"target {value!r}: {reason}")
        self.value = value
        self.reason = reason


@dataclass(frozen=True)
class Target:
    """One build target. ``platforms`` are the platforms it accepts, best first."""

    name: str
    interpreter: str
    abi: str
    platform: str
    platforms: tuple[str, ...]

    @classmethod
    def parse(cls, name: str, platforms: tuple[str, ...] = ()) -> Target:
        """A target from its name, e.g. ``cp311-cp311-linux_armv7l`` (CPython 3 only)."""
        match = _NAME.fullmatch(name)
        if match is None:
            raise InvalidTarget(
                name, "expected <cpXY>-<abi>-<platform>, e.g. cp311-cp311-linux_armv7l"
            )
        accepted = tuple(dict.fromkeys((match["platform"], *platforms)))
        for platform in accepted:
            if not re.fullmatch(r"[a-z0-9_]+", platform):
                raise InvalidTarget(name, f"platform {platform!r} is not a platform tag")
        return cls(name, match["interpreter"], match["abi"], match["platform"], accepted)

    @property
    def python_version(self) -> tuple[int, int]:
        return (int(self.interpreter[2]), int(self.interpreter[3:]))

    @property
    def python(self) -> str:
        """The Python version as Requires-Python compares it, e.g. ``3.11``."""
        major, minor = self.python_version
        return f"{major}.{minor}"

    def compatible_tags(self) -> frozenset[Tag]:
        """Every wheel tag that installs on this target (what pip on it would accept)."""
        platforms = list(self.platforms)
        found = set(tags.cpython_tags(self.python_version, abis=[self.abi], platforms=platforms))
        found |= set(
            tags.compatible_tags(self.python_version, self.interpreter, platforms=platforms)
        )
        return frozenset(found)

    def admits(self, requires_python: str | None) -> bool:
        """Whether a release with this Requires-Python installs on this target's Python.

        Like pip, an unparseable Requires-Python does not exclude anything.
        """
        if not requires_python:
            return True
        try:
            return SpecifierSet(requires_python).contains(self.python, prereleases=True)
        except InvalidSpecifier:
            return True


def local_target() -> Target:
    """The target of the interpreter running this code: what a builder here produces."""
    first = next(iter(tags.sys_tags()))
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    name = f"{tags.interpreter_name()}{tags.interpreter_version()}-{first.abi}-{platform}"
    return Target.parse(name, tuple(tags.platform_tags()))


# --- targets in words -----------------------------------------------------------------------

# A wheel platform's machine (the end of its tag) in words people read on a download page.
_ARCHITECTURES = {
    "x86_64": "64-bit x86",
    "i686": "32-bit x86",
    "i386": "32-bit x86",
    "aarch64": "64-bit ARM",
    "armv7l": "32-bit ARM",
    "armv6l": "32-bit ARM (ARMv6)",
    "ppc64le": "64-bit POWER (little-endian)",
    "ppc64": "64-bit POWER (big-endian)",
    "s390x": "IBM Z",
    "riscv64": "64-bit RISC-V",
    "loongarch64": "64-bit LoongArch",
}
# Longest first, so that "ppc64le" is found before "ppc64".
_MACHINE = re.compile(
    r"_(" + "|".join(sorted(map(re.escape, _ARCHITECTURES), key=len, reverse=True)) + r")$"
)
# Debian's code names by release number; a distro is named "<family>-<codename>".
_DEBIAN = {"buster": "10", "bullseye": "11", "bookworm": "12", "trixie": "13", "forky": "14"}
_UBUNTU = {"focal": "20.04", "jammy": "22.04", "noble": "24.04"}


def machine_of(platform: str) -> str | None:
    """The machine a Linux platform tag is for (``manylinux_2_17_aarch64`` -> ``aarch64``);
    None for a platform whose machine we do not know."""
    match = _MACHINE.search(platform)
    return match[1] if match else None


def architecture_words(platform: str) -> str:
    """A platform's architecture for people: ``linux_aarch64`` -> ``64-bit ARM``.

    A platform we have no words for is shown as it is.
    """
    machine = machine_of(platform)
    return _ARCHITECTURES[machine] if machine is not None else platform


def distro_words(distro: str) -> str:
    """A distro name for people: ``debian-bookworm`` (or the shipped list's name,
    ``debian-bookworm-base``) -> ``Debian 12``; names we have no words for, as they are."""
    family, _, rest = distro.partition("-")
    codename, _, variant = rest.lower().partition("-")
    numbers = {"debian": _DEBIAN, "ubuntu": _UBUNTU}.get(family.lower())
    if numbers is None or codename not in numbers:
        return distro
    words = f"{family.capitalize()} {numbers[codename]}"
    return words if variant in ("", "base") else f"{words} ({variant})"


@lru_cache(maxsize=1024)
def describe_target(name: str, distro: str | None = None) -> str:
    """A target in words, as the index's pages show it beside its name.

    ``cp311-cp311-linux_aarch64`` on ``debian-bookworm``: ``Python 3.11 · 64-bit ARM · Debian 12``.

    A name that is not a target's is returned as it is; without a distro, the part is left out.
    """
    try:
        target = Target.parse(name)
    except InvalidTarget:
        return name
    python = f"Python {target.python}"
    if target.abi.endswith("t"):  # cp313t: the free-threaded build
        python += " (free-threaded)"
    parts = [python, architecture_words(target.platform)]
    if distro:
        parts.append(distro_words(distro))
    return " \N{MIDDLE DOT} ".join(parts)
