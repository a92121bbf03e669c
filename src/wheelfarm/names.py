"""Names and versions: thin helpers over ``packaging`` so every module normalises alike."""

from __future__ import annotations

import functools
import re

from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

__all__ = [
    "MAX_FILENAME",
    "MAX_NAME",
    "SDIST_SUFFIXES",
    "NormalizedName",
    "build_number",
    "canonical",
    "is_prerelease",
    "shown_text",
    "sort_versions",
    "text_problem",
    "unsafe_text_problem",
    "version_order",
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


def version_order(version: str) -> tuple[bool, Version, str]:
    """A sort key for listings: PEP 440 order (``0.9`` before ``0.11``), then versions
    packaging cannot parse, by their text, after every valid one."""
    try:
        return (False, Version(version), version)
    except InvalidVersion:
        return (True, Version("0"), version)


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


# Control characters (C0, DEL, C1) and the bidirectional embeddings, overrides and isolates
# (U+202A-U+202E, U+2066-U+2069): a name holding one can show as another name on a page or in
# a terminal ("Trojan Source").
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def unsafe_text_problem(what: str, value: str) -> str | None:
    """Why a name people will read is unsafe to show (a control or bidi override character)."""
    found = _UNSAFE.search(value)
    if found is None:
        return None
    return f"{what} contains the control or bidirectional character U+{ord(found[0]):04X}"


def shown_text(value: str) -> str:
    """``value`` with each control or bidi override character replaced by U+FFFD, to show."""
    return _UNSAFE.sub("\ufffd", value)


def build_number(filename: str) -> int:
    """The number of a wheel file name's build tag (``demo-1.0-2-py3-none-any.whl``: 2); 0 when
    it has none or is no wheel name.

    The wheel spec (PEP 427) lets a rebuild of one release be told apart by this tag alone, and
    installers prefer the higher number when everything else is equal: wheelfarm's rebuilds
    number their wheels 1, 2, ... and leave the first build untagged.
    """
    try:
        build = parse_wheel_filename(filename)[2]
    except InvalidWheelFilename:
        return 0
    return build[0] if build else 0
