"""The libraries of one machine as its dynamic loader and dpkg see them.

:class:`SystemLibraries` answers two questions for the wheel analysis (:mod:`.sysdeps`): which
file the loader would load for a soname, and which Debian package ships that file. The ld.so
cache and dpkg's file lists are read once and shared (:func:`local_libraries`).

The machine may be another one's root file system (an emulated builder's,
:mod:`wheelfarm.builder.rootfs`): given ``root``, every path is the root's (symlinks resolve
inside it), the cache is its ``etc/ld.so.cache`` (printed by the host's ``ldconfig -C``, which
reads any architecture's cache) and dpkg's lists are its ``var/lib/dpkg/info``
(:func:`root_libraries`).
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import subprocess
import sysconfig
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "ELF_HEADER_BYTES",
    "ElfIdentity",
    "SystemLibraries",
    "elf_identity",
    "local_libraries",
    "root_libraries",
]

_ELF_MAGIC = b"\x7fELF"
ELF_HEADER_BYTES = 20  # e_ident (16) + e_type (2) + e_machine (2)
_LIBRARY_DIRS = ("lib", "lib32", "lib64", "libx32", "bin", "sbin")  # merged under /usr on Debian 12


class ElfIdentity(NamedTuple):
    """Class, byte order and machine: the loader only takes a library of the object's own kind."""

    elf_class: int  # EI_CLASS: 1 (32-bit) or 2 (64-bit)
    data: int  # EI_DATA: 1 (little-endian) or 2 (big-endian)
    machine: int  # e_machine


def elf_identity(header: bytes) -> ElfIdentity | None:
    """Class, byte order and machine from an ELF header's first bytes (None: not ELF)."""
    if len(header) < ELF_HEADER_BYTES or not header.startswith(_ELF_MAGIC):
        return None
    elf_class, data = header[4], header[5]
    if elf_class not in (1, 2) or data not in (1, 2):
        return None
    machine = int.from_bytes(header[18:20], "little" if data == 1 else "big")
    return ElfIdentity(elf_class, data, machine)


class SystemLibraries:
    """The libraries of one machine as its loader and dpkg see them.

    The ld.so cache (``ldconfig -p``) and dpkg's file lists are read once, on first use; a
    lookup after that is a dictionary access, so a build maps all its libraries in one batch.
    """

    def __init__(
        self,
        *,
        ldconfig: str | None = None,
        dpkg_info: Path = Path("/var/lib/dpkg/info"),
        default_dirs: tuple[str, ...] | None = None,
        root: Path | None = None,
    ) -> None:
        self._ldconfig = ldconfig if ldconfig is not None else _find_ldconfig()
        self._root = str(root.resolve()) if root is not None else None
        self._dpkg_info = dpkg_info
        self._default_dirs = default_dirs if default_dirs is not None else _default_dirs()
        self._cache: dict[str, list[str]] | None = None
        self._owners: dict[str, str] | None = None
        self._identities: dict[str, ElfIdentity | None] = {}
        self._lock = threading.Lock()

    def warm(self) -> None:
        """Read the ld.so cache and dpkg's file lists now (else on first lookup)."""
        self._ld_cache()
        self._owner_index()

    def find(self, soname: str, identity: ElfIdentity, search: Iterable[str]) -> str | None:
        """The file the loader would load for ``soname``: ``search`` dirs, the cache, defaults."""
        candidates = [posixpath.join(directory, soname) for directory in search]
        candidates += self._ld_cache().get(soname, [])
        candidates += [posixpath.join(directory, soname) for directory in self._default_dirs]
        return next((path for path in candidates if self._fits(path, identity)), None)

    def owner(self, path: str) -> str | None:
        """The Debian package that ships ``path`` (merged-usr aliases and links tried too)."""
        owners = self._owner_index()
        aliases = _aliases(path, self._realpath)
        return next((owners[alias] for alias in aliases if alias in owners), None)

    def _host_path(self, path: str) -> str:
        """Where the host finds the machine's ``path`` (inside the root, if there is one)."""
        return path if self._root is None else self._root + _resolve_in(self._root, path)

    def _realpath(self, path: str) -> str:
        return os.path.realpath(path) if self._root is None else _resolve_in(self._root, path)

    def _fits(self, path: str, identity: ElfIdentity) -> bool:
        if path not in self._identities:
            try:
                with open(self._host_path(path), "rb") as handle:
                    self._identities[path] = elf_identity(handle.read(ELF_HEADER_BYTES))
            except OSError:  # missing, a directory, unreadable: not a candidate
                self._identities[path] = None
        return self._identities[path] == identity

    def _ld_cache(self) -> dict[str, list[str]]:
        with self._lock:
            if self._cache is None:
                cache = None if self._root is None else f"{self._root}/etc/ld.so.cache"
                self._cache = _read_ld_cache(self._ldconfig, cache)
            return self._cache

    def _owner_index(self) -> dict[str, str]:
        with self._lock:
            if self._owners is None:
                self._owners = _read_dpkg_lists(self._dpkg_info)
            return self._owners


_LOCAL: tuple[tuple[int, int], SystemLibraries] | None = None
_LOCAL_LOCK = threading.Lock()


def local_libraries() -> SystemLibraries:
    """This machine's libraries, shared by the process until the ld.so cache or dpkg change."""
    global _LOCAL
    stamp = (_mtime("/etc/ld.so.cache"), _mtime("/var/lib/dpkg/info"))
    with _LOCAL_LOCK:
        if _LOCAL is None or _LOCAL[0] != stamp:
            _LOCAL = (stamp, SystemLibraries())
        return _LOCAL[1]


def root_libraries(root: Path, multiarch: str | None) -> SystemLibraries:
    """The libraries of the root file system at ``root``, whose loader's triplet is
    ``multiarch`` (``aarch64-linux-gnu``; its interpreter's ``MULTIARCH``)."""
    return SystemLibraries(
        dpkg_info=root / "var/lib/dpkg/info", default_dirs=_default_dirs(multiarch), root=root
    )


def _resolve_in(root: str, path: str) -> str:
    """``path`` with its symlinks resolved as inside ``root`` (absolute links stay in it)."""
    parts = [part for part in path.split("/") if part]
    resolved = "/"
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            resolved = posixpath.dirname(resolved)
            continue
        candidate = posixpath.join(resolved, part)
        if hops < 40 and os.path.islink(root + candidate):
            hops += 1
            link = os.readlink(root + candidate)
            parts = [p for p in link.split("/") if p] + parts
            if link.startswith("/"):
                resolved = "/"
        else:
            resolved = candidate
    return resolved


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def _find_ldconfig() -> str | None:
    for path in ("/sbin/ldconfig", "/usr/sbin/ldconfig"):
        if os.access(path, os.X_OK):
            return path
    return shutil.which("ldconfig")


def _default_dirs(triplet: str | None = None) -> tuple[str, ...]:
    """The loader's trusted directories (this interpreter's triplet unless given), multiarch
    first (as Debian's loader has them)."""
    triplet = triplet or sysconfig.get_config_var("MULTIARCH")
    multiarch = (f"/lib/{triplet}", f"/usr/lib/{triplet}") if triplet else ()
    return (*multiarch, "/lib", "/usr/lib", "/lib64", "/usr/lib64")


_CACHE_LINE = re.compile(r"^\s+(\S+) \(([^)]*)\) => (/.+)$")


def _read_ld_cache(ldconfig: str | None, cache: str | None = None) -> dict[str, list[str]]:
    """soname -> paths from ``ldconfig -p`` (each of every class; the caller checks which fits),
    of ``cache`` when given (``-C``), else of this machine's cache."""
    if ldconfig is None:
        return {}
    try:
        listing = subprocess.run(
            [ldconfig, "-p", *(("-C", cache) if cache else ())],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    cache: dict[str, list[str]] = {}
    for line in listing.splitlines():
        match = _CACHE_LINE.match(line)
        if match:
            cache.setdefault(match[1], []).append(match[3])
    return cache


def _read_dpkg_lists(info: Path) -> dict[str, str]:
    """path -> package for the shared libraries dpkg installed (its ``*.list`` files)."""
    owners: dict[str, str] = {}
    try:
        lists = sorted(info.glob("*.list"))
    except OSError:
        return owners
    for listing in lists:
        package = listing.name.removesuffix(".list").split(":", 1)[0]
        try:
            text = listing.read_text("utf-8", "replace")
        except OSError:
            continue
        for line in text.splitlines():
            if ".so" in line:
                owners.setdefault(line, package)
    return owners


def _aliases(path: str, realpath: Callable[[str], str] = os.path.realpath) -> Iterator[str]:
    """``path`` as dpkg may list it: itself, through resolved directories, and merged-usr twins.

    On Debian 12 ``/lib`` is a link to ``/usr/lib``, but a package lists its files under the
    name it was built with (``zlib1g``: ``/lib/...``; ``libyaml-0-2``: ``/usr/lib/...``).
    """
    seen: set[str] = set()
    directory_resolved = posixpath.join(realpath(posixpath.dirname(path)), posixpath.basename(path))
    for variant in (path, directory_resolved, realpath(path)):
        for alias in (variant, _usr_twin(variant)):
            if alias is not None and alias not in seen:
                seen.add(alias)
                yield alias


def _usr_twin(path: str) -> str | None:
    parts = path.split("/")
    if len(parts) > 2 and parts[1] == "usr" and parts[2] in _LIBRARY_DIRS:
        return "/" + "/".join(parts[2:])
    if len(parts) > 1 and parts[1] in _LIBRARY_DIRS:
        return "/usr" + path
    return None
