"""Names and versions: thin helpers over ``packaging`` so every module normalises alike."""

from __future__ import annotations

import functools

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

__all__ = ["NormalizedName", "canonical", "is_prerelease", "sort_versions"]


@functools.lru_cache(maxsize=65536)
def canonical(name: str) -> NormalizedName:
    """The PEP 503 key of a project name: ``Package.Name`` and ``package-name`` are one project.

    Cached: the changelog names the same projects over and over.
    """
    return canonicalize_name(name)


@functools.lru_cache(maxsize=65536)
def is_prerelease(version: str) -> bool:
    """PEP 440 pre-release (or dev release); a legacy version packaging cannot parse is not one."""
    try:
        return Version(version).is_prerelease
    except InvalidVersion:
        return False


def sort_versions(versions: list[str]) -> list[str]:
    """Versions oldest first by PEP 440; legacy versions packaging cannot parse go first."""

    def key(version: str) -> tuple[bool, Version, str]:
        try:
            return (True, Version(version), version)
        except InvalidVersion:
            return (False, Version("0"), version)

    return sorted(versions, key=key)
