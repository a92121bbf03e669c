"""Names and versions: thin helpers over ``packaging`` so every module normalises alike."""

from __future__ import annotations

import functools

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

__all__ = [
    "MAX_FILENAME",
    "MAX_NAME",
    "SDIST_SUFFIXES",
    "NormalizedName",
    "canonical",
    "is_prerelease",
    "sort_versions",
    "text_problem",
]

# Source distribution file endings, the legacy ones included (PEP 625 allows only .tar.gz).
SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar.xz", ".tar")

# The store's column widths: longer input from the outside is refused, not truncated.
MAX_NAME = 255  # project names and versions
MAX_FILENAME = 512


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


def text_problem(what: str, value: str, limit: int) -> str | None:
    """Why an upstream string cannot be stored (empty, too long, a NUL), or None if it can."""
    if not value:
        return f"{what} is empty"
    if len(value) > limit:
        return f"{what} is longer than {limit} characters"
    if "\x00" in value:
        return f"{what} contains a NUL character"
    return None
