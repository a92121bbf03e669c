"""System dependencies: the Debian packages a wheel's shared objects need at run time.

Why: a wheel that installs cleanly can still fail at import with ``libfoo.so.3: cannot open
shared object file``, because it links a library the user's system lacks. After a build, the
builder reads every ELF object in each wheel (found by its magic bytes, not its name), resolves
each ``NEEDED`` library as the dynamic loader on that machine would, and maps the file it finds
to the Debian package that owns it (the machine's side of that is
:mod:`wheelfarm.builder.libraries`). The master stores the result and subtracts what the target's
base image already has (:mod:`wheelfarm.farm.dependencies`).

The wheel is untrusted. Members are read from the zip into anonymous scratch files that this
module names itself, in a private temporary directory; no member name becomes a path, and no
symlink is followed. A malformed or oversized object becomes a recorded problem, never an
exception.
"""

from __future__ import annotations

import posixpath
import re
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NamedTuple

from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile
from pydantic import ValidationError

from wheelfarm.builder.libraries import (
    ELF_HEADER_BYTES,
    ElfIdentity,
    SystemLibraries,
    elf_identity,
    local_libraries,
)
from wheelfarm.protocol import WheelDependencies

__all__ = [
    "AnalysisLimits",
    "SystemDependencies",
    "analyse_wheel",
    "to_wire",
]

_PROBLEM_CHARS = 300  # one problem's text is cut to this (it may quote a member name)
_SPOOL_BYTES = 8 << 20  # objects up to this size are parsed in memory, larger ones on disk

#: The dynamic entries read, and the attribute pyelftools puts their string in.
_STRING_TAGS = {
    "DT_NEEDED": "needed",
    "DT_SONAME": "soname",
    "DT_RPATH": "rpath",
    "DT_RUNPATH": "runpath",
}

_PLAIN_NAME = re.compile(r"[^/\s\x00]{1,255}")  # what the master accepts as a soname


@dataclass(frozen=True)
class AnalysisLimits:
    """How much of a wheel is analysed; anything beyond is skipped and recorded as a problem."""

    max_object_bytes: int = 512 << 20  # one ELF member, uncompressed
    max_objects: int = 10_000
    max_dynamic_entries: int = 10_000
    max_problems: int = 50


@dataclass(frozen=True)
class SystemDependencies:
    """What a wheel needs from the system, as far as the analysis could tell.

    ``apt``: packages owning the libraries found (sorted, no ``:arch`` qualifier).
    ``unresolved``: sonames found nowhere, or in files no package owns. ``bundled``: sonames
    the wheel carries itself (satisfied). ``problems``: what could not be analysed, and why.
    """

    apt: tuple[str, ...] = ()
    unresolved: tuple[str, ...] = ()
    bundled: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


class _Search(NamedTuple):
    """Where an object's RPATH/RUNPATH leads for one soname."""

    inside: bool  # found inside the wheel
    system_dirs: list[str]  # else: absolute directories to try before the ld.so cache


@dataclass(frozen=True)
class _Object:
    """One ELF object in the wheel: where it sits and what it asks of the loader."""

    member: str
    identity: ElfIdentity
    soname: str | None = None
    needed: tuple[str, ...] = ()
    rpath: tuple[str, ...] = ()
    runpath: tuple[str, ...] = ()


def analyse_wheel(
    path: Path,
    libraries: SystemLibraries | None = None,
    limits: AnalysisLimits = AnalysisLimits(),  # frozen: one shared default is safe
) -> SystemDependencies:
    """The system dependencies of the wheel at ``path``; never raises for a bad wheel."""
    try:
        return _Analysis(path, libraries or local_libraries(), limits).run()
    except Exception as error:  # untrusted input: whatever breaks is recorded, not raised
        return SystemDependencies(problems=(_cut(f"{path.name}: not analysed: {error!r}"),))


def _cut(text: str) -> str:
    return text if len(text) <= _PROBLEM_CHARS else text[: _PROBLEM_CHARS - 3] + "..."


@dataclass
class _Analysis:
    path: Path
    libraries: SystemLibraries
    limits: AnalysisLimits
    objects: list[_Object] = field(default_factory=list)
    identities: dict[str, ElfIdentity] = field(default_factory=dict)  # every ELF member
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        if len(self.problems) < self.limits.max_problems:
            self.problems.append(_cut(text))
        elif len(self.problems) == self.limits.max_problems:
            self.problems.append("more problems were not recorded")

    def run(self) -> SystemDependencies:
        with (
            zipfile.ZipFile(self.path) as archive,
            tempfile.TemporaryDirectory(prefix="wheelfarm-sysdeps-") as scratch,
        ):
            for info in archive.infolist():
                self.read_member(archive, info, Path(scratch))
        return self.resolve()

    def read_member(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, scratch: Path) -> None:
        """Note an ELF member and parse it if it is within the limits."""
        if info.is_dir():
            return
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            self.problem(f"{info.filename}: a symlink, not followed")
            return
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # no type bits: a plain file
            return
        try:
            with archive.open(info) as member:
                identity = elf_identity(member.read(ELF_HEADER_BYTES))
        except Exception as error:  # a corrupt member: bad CRC, deflate error, encryption
            self.problem(f"{info.filename}: unreadable: {error}")
            return
        if identity is None:
            return
        self.identities[info.filename] = identity
        if len(self.objects) >= self.limits.max_objects:
            self.problem(f"{info.filename}: more than {self.limits.max_objects} objects, skipped")
        elif info.file_size > self.limits.max_object_bytes:
            self.problem(
                f"{info.filename}: larger than {self.limits.max_object_bytes} bytes, not analysed"
            )
        else:
            self.parse_member(archive, info, identity, scratch)

    def parse_member(
        self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, identity: ElfIdentity, scratch: Path
    ) -> None:
        with tempfile.SpooledTemporaryFile(_SPOOL_BYTES, dir=str(scratch)) as copy:
            try:
                with archive.open(info) as member:
                    copied = 0
                    while chunk := member.read(1 << 20):
                        copied += len(chunk)
                        if copied > self.limits.max_object_bytes:
                            self.problem(
                                f"{info.filename}: larger than "
                                f"{self.limits.max_object_bytes} bytes, not analysed"
                            )
                            return
                        copy.write(chunk)
                copy.seek(0)
                found = self.parse(info.filename, identity, copy)
            except Exception as error:  # pyelftools on hostile bytes can raise almost anything
                self.problem(f"{info.filename}: malformed ELF: {error}")
                return
        if found is not None:
            self.objects.append(found)

    def parse(self, member: str, identity: ElfIdentity, stream: IO[bytes]) -> _Object | None:
        """What one ELF object asks of the loader (None: not something the loader loads)."""
        elf = ELFFile(stream)
        if elf["e_type"] not in ("ET_DYN", "ET_EXEC"):
            return None  # relocatable objects and core files are never loaded
        soname: str | None = None
        needed: list[str] = []
        rpath: list[str] = []
        runpath: list[str] = []
        dynamic = next((s for s in elf.iter_segments() if isinstance(s, DynamicSegment)), None)
        if dynamic is None:
            if elf["e_type"] == "ET_DYN":  # every shared object has one; a static program not
                self.problem(f"{member}: malformed ELF: a shared object with no PT_DYNAMIC")
            return _Object(member, identity)
        # the loader reads the first PT_DYNAMIC only
        for count, tag in enumerate(dynamic.iter_tags()):
            if count >= self.limits.max_dynamic_entries:
                self.problem(f"{member}: more than {count} dynamic entries, the rest ignored")
                break
            kind = tag.entry.d_tag
            if kind == "DT_NULL":
                break
            if kind not in _STRING_TAGS:
                continue
            value = str(getattr(tag, _STRING_TAGS[kind]))  # pyelftools sets it per kind
            if kind == "DT_NEEDED":
                needed.append(value)
            elif kind == "DT_SONAME":
                soname = value
            elif kind == "DT_RPATH":
                rpath += value.split(":")
            else:
                runpath += value.split(":")
        return _Object(member, identity, soname, tuple(needed), tuple(rpath), tuple(runpath))

    def resolve(self) -> SystemDependencies:
        """Resolve every NEEDED entry; map what the system provides to packages in one batch."""
        by_soname: dict[str, set[ElfIdentity]] = {}
        for obj in self.objects:
            if obj.soname:
                by_soname.setdefault(obj.soname, set()).add(obj.identity)
        for member, identity in self.identities.items():  # oversized ones count as present
            by_soname.setdefault(posixpath.basename(member), set()).add(identity)
        apt: set[str] = set()
        unresolved: set[str] = set()
        bundled: set[str] = set()
        for obj in self.objects:
            for soname in obj.needed:
                if not _PLAIN_NAME.fullmatch(soname):  # a path, or junk: not a name to look up
                    self.problem(f"{obj.member}: NEEDED {soname!r} is not a plain library name")
                    continue
                inside, system_dirs = self.search(obj, soname)
                if inside or obj.identity in by_soname.get(soname, ()):
                    # found through RPATH/RUNPATH, or loaded already by soname from the wheel
                    bundled.add(soname)
                    continue
                found = self.libraries.find(soname, obj.identity, system_dirs)
                package = self.libraries.owner(found) if found is not None else None
                if package is None:
                    unresolved.add(soname)
                else:
                    apt.add(package)
        return SystemDependencies(
            apt=tuple(sorted(apt)),
            unresolved=tuple(sorted(unresolved - bundled)),
            bundled=tuple(sorted(bundled)),
            problems=tuple(self.problems),
        )

    def search(self, obj: _Object, soname: str) -> _Search:
        """Whether the object's RPATH/RUNPATH finds ``soname`` inside the wheel; else the
        absolute directories to try on the system before the ld.so cache.

        As in glibc, DT_RPATH counts only when there is no DT_RUNPATH. ``$ORIGIN`` is the
        object's directory inside the wheel; a path that leaves the wheel cannot be checked.
        """
        origin = posixpath.dirname(obj.member)
        system_dirs: list[str] = []
        for directory in obj.runpath or obj.rpath:
            for token in ("${ORIGIN}", "$ORIGIN"):
                if directory.startswith(token):
                    relative = directory[len(token) :].lstrip("/")
                    candidate = posixpath.normpath(posixpath.join(origin, relative, soname))
                    if (
                        not candidate.startswith("../")
                        and self.identities.get(candidate) == obj.identity
                    ):
                        return _Search(True, system_dirs)
                    break
            else:
                if directory.startswith("/") and "$" not in directory:
                    system_dirs.append(directory)
        return _Search(False, system_dirs)


def to_wire(found: SystemDependencies) -> WheelDependencies:
    """The analysis as the builder sends it (and the master validates it).

    The analysis already keeps to what the master accepts; should it not, the wheel still goes
    out, with the reason instead of its lists.
    """
    try:
        return WheelDependencies(
            apt=list(found.apt),
            unresolved=list(found.unresolved),
            bundled=list(found.bundled),
            problems=list(found.problems),
        )
    except ValidationError as error:
        return WheelDependencies(problems=[f"analysis not sendable: {error}"[:300]])
