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

from packaging import tags
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag

from wheelfarm.errors import WheelfarmError

__all__ = ["InvalidTarget", "Target", "local_target"]

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
