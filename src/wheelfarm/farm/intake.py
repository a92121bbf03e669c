"""Intake: check a wheel a builder uploaded, then store it under its name for good.

Builders are untrusted machines. Anything they upload is read as hostile until it has passed
:func:`inspect_wheel`. That function compares the file with what the builder reported (size and
sha256) and with what the job asked for (project, version and the target's tags). It refuses
archives that would write outside the install directory, symlinks, and zip bombs. It also keeps
the ``METADATA`` bytes, which the index serves later as PEP 658 metadata.

:func:`store_wheel` then puts the bytes in the published directory without ever replacing them.
Installers cache and pin files by name and hash, so a name that got new bytes would break
every lock file that has the old hash.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import re
import secrets
import zipfile
import zlib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from installer.exceptions import InstallerError
from installer.sources import WheelFile
from packaging.metadata import parse_email
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from wheelfarm.errors import WheelfarmError
from wheelfarm.names import MAX_FILENAME, NormalizedName, canonical, text_problem
from wheelfarm.names import unsafe_text_problem as unsafe

__all__ = [
    "AcceptedWheel",
    "IntakeError",
    "IntakeLimits",
    "inspect_wheel",
    "store_wheel",
]

_CHUNK = 1 << 20  # hash and copy in 1 MiB pieces: a wheel may be larger than memory allows

# A drive-qualified name (``C:foo``) is absolute on Windows even without a slash.
_DRIVE = re.compile(r"[A-Za-z]:")

# The file type bits of a Unix mode, as zip stores them in the top half of external_attr.
_S_IFMT = 0o170000
_S_IFLNK = 0o120000

# What reading a corrupt member raises: a bad CRC or header (BadZipFile), a truncated stream
# (EOFError), a corrupt deflate or lzma stream, bzip2's OSError, an encrypted member
# (RuntimeError), a compression method zipfile lacks (NotImplementedError).
_UNREADABLE_MEMBER = (
    zipfile.BadZipFile,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    OSError,
    RuntimeError,
    NotImplementedError,
)


@dataclass(frozen=True)
class IntakeLimits:
    """How big an upload may be, before and after decompression.

    The uncompressed limits are read from the zip's central directory (``ZipInfo.file_size``).
    They are checked before any member is read, so a zip bomb is refused without inflating it.
    """

    max_wheel_bytes: int = 1 << 30  # the whole file
    max_member_bytes: int = 2 << 30  # one member, uncompressed
    max_total_bytes: int = 4 << 30  # all members, uncompressed
    max_members: int = 100_000
    max_metadata_bytes: int = 10 << 20  # METADATA is read into memory and served as it is


@dataclass(frozen=True)
class AcceptedWheel:
    """A wheel that passed intake: what the index needs to list it and serve its metadata."""

    filename: str
    sha256: str
    size: int
    project: NormalizedName
    version: str  # str(packaging Version), as in the file name
    tags: frozenset[Tag]
    requires_python: str | None
    requires_dist: tuple[str, ...]
    metadata: bytes  # the raw .dist-info/METADATA bytes, served later as PEP 658 metadata


class IntakeError(WheelfarmError):
    """An upload was refused; nothing of it was published."""

    def __init__(self, filename: str, reason: str) -> None:
        super().__init__(f"wheel {filename!r} refused: {reason}")
        self.filename = filename
        self.reason = reason


def inspect_wheel(
    path: Path,
    *,
    filename: str,
    project: str,
    version: str,
    accepted_tags: Collection[Tag] | None,
    expected_sha256: str | None,
    expected_size: int | None,
    limits: IntakeLimits = IntakeLimits(),  # frozen, so one shared default is safe
) -> AcceptedWheel:
    """Check an uploaded wheel and describe it; raise :class:`IntakeError` on the first problem.

    The cheap checks on the name come first, then the size (before hashing a file we would
    refuse anyway), then the hash, then the archive. The file is opened once: the bytes that
    are hashed are the bytes whose zip directory is checked.
    """
    wheel_name, wheel_version, tags = _check_filename(filename, project, version)
    if accepted_tags is not None:
        accepted = set(accepted_tags)
        if not any(tag in accepted for tag in tags):
            shown = ", ".join(sorted(str(tag) for tag in tags))
            raise IntakeError(filename, f"no tag of the wheel ({shown}) is accepted by the target")

    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size > limits.max_wheel_bytes:
            raise IntakeError(
                filename, f"file is too big: {size} bytes, the limit is {limits.max_wheel_bytes}"
            )
        if expected_size is not None and size != expected_size:
            raise IntakeError(
                filename, f"size mismatch: the file has {size} bytes, expected {expected_size}"
            )
        sha256, hashed = _hash(file)
        if hashed != size:
            raise IntakeError(filename, "file changed while it was read")
        if expected_sha256 is not None and sha256 != expected_sha256.lower():
            raise IntakeError(
                filename, f"sha256 mismatch: the file has {sha256}, expected {expected_sha256}"
            )
        file.seek(0)
        metadata = _check_archive(file, filename, wheel_name, wheel_version, limits)

    requires_python, requires_dist = _check_metadata(metadata, filename, wheel_name, wheel_version)
    return AcceptedWheel(
        filename=filename,
        sha256=sha256,
        size=size,
        project=wheel_name,
        version=str(wheel_version),
        tags=tags,
        requires_python=requires_python,
        requires_dist=requires_dist,
        metadata=metadata,
    )


def store_wheel(source: Path, wheel: AcceptedWheel, directory: Path) -> Path:
    """Publish the inspected bytes as ``directory / wheel.filename``, atomically, never replacing.

    The copy goes to a hidden partial file, is fsynced, and is then hard-linked to its name.
    ``os.link`` fails when the name exists, so two uploads racing for one name cannot replace
    each other's bytes. Storing the same bytes again returns the existing path. The copy is
    hashed as it is written, so a source that changed since :func:`inspect_wheel` is refused.
    """
    _check_plain_filename(wheel.filename)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / wheel.filename
    if target.exists():
        return _existing(target, wheel)

    partial = directory / f".{wheel.filename}.partial-{secrets.token_hex(8)}"
    try:
        with source.open("rb") as reader, partial.open("xb") as writer:
            digest = hashlib.sha256()
            while chunk := reader.read(_CHUNK):
                digest.update(chunk)
                writer.write(chunk)
            writer.flush()
            os.fsync(writer.fileno())
        if digest.hexdigest() != wheel.sha256:
            raise IntakeError(wheel.filename, "the source file changed since it was inspected")
        try:
            os.link(partial, target)
        except FileExistsError:
            # Another upload published this name between our check and our link.
            return _existing(target, wheel)
        _fsync_directory(directory)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _check_plain_filename(filename: str) -> None:
    """Refuse a file name that is not one plain path component: it becomes a path on our disk."""
    problem = text_problem("file name", filename, MAX_FILENAME) or unsafe("file name", filename)
    if problem is not None:
        raise IntakeError(filename, problem)
    if "/" in filename or "\\" in filename:
        raise IntakeError(filename, "file name contains a path separator")
    if filename.startswith("."):
        # Our partial files are hidden; a published wheel never is.
        raise IntakeError(filename, "file name starts with a dot")


def _check_filename(
    filename: str, project: str, version: str
) -> tuple[NormalizedName, Version, frozenset[Tag]]:
    """The wheel's name, version and tags from its file name, which must match the job."""
    _check_plain_filename(filename)
    try:
        name, wheel_version, _build, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as error:
        raise IntakeError(filename, f"invalid wheel file name: {error}") from error
    if name != canonical(project):
        raise IntakeError(filename, f"project {name!r} in the file name, expected {project!r}")
    try:
        expected = Version(version)
    except InvalidVersion as error:
        raise IntakeError(filename, f"expected version {version!r} is not valid") from error
    if wheel_version != expected:
        raise IntakeError(
            filename, f"version {str(wheel_version)!r} in the file name, expected {version!r}"
        )
    return name, wheel_version, tags


def _hash(file: BinaryIO) -> tuple[str, int]:
    """The sha256 hex digest and length of a file, read from where it stands."""
    digest = hashlib.sha256()
    size = 0
    while chunk := file.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _check_archive(
    file: BinaryIO, filename: str, name: NormalizedName, version: Version, limits: IntakeLimits
) -> bytes:
    """Check the zip's directory, then return its METADATA bytes.

    Every member name is checked, not only the ones an installer would write. A name that one
    unpacker resolves harmlessly may escape the target with another.
    """
    try:
        if not zipfile.is_zipfile(file):
            raise IntakeError(filename, "not a readable zip")
        file.seek(0)
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:
        # ValueError: a member name flagged UTF-8 that is not UTF-8; NotImplementedError: a
        # member that needs a later zip version than zipfile reads (found by fuzzing).
        raise IntakeError(filename, f"not a readable zip: {error}") from error
    with archive:
        infos = archive.infolist()
        _check_members(infos, filename, limits)
        info_dir = _dist_info(infos, filename, name, version)
        members = {info.filename: info for info in infos}
        if f"{info_dir}/WHEEL" not in members:
            raise IntakeError(filename, f"{info_dir}/WHEEL is missing")
        metadata = members.get(f"{info_dir}/METADATA")
        if metadata is None:
            raise IntakeError(filename, f"{info_dir}/METADATA is missing")
        if metadata.file_size > limits.max_metadata_bytes:
            raise IntakeError(
                filename,
                f"{metadata.filename} is too big: {metadata.file_size} bytes, "
                f"the limit is {limits.max_metadata_bytes}",
            )
        try:
            with archive.open(metadata) as member:
                # zipfile stops at file_size, but a limit that does not trust it costs nothing.
                data = member.read(limits.max_metadata_bytes + 1)
        except _UNREADABLE_MEMBER as error:
            raise IntakeError(filename, f"{metadata.filename} is not readable: {error}") from error
        _check_record(archive, filename)
    if len(data) > limits.max_metadata_bytes:
        raise IntakeError(filename, f"{metadata.filename} is larger than its zip entry says")
    return data


def _check_record(archive: zipfile.ZipFile, filename: str) -> None:
    """Every member in ``RECORD`` with its hash and size (after the limits: no bomb inflates)."""
    archive.filename = filename  # installer parses the wheel's name from it, not our spool's
    try:
        WheelFile(archive).validate_record(validate_contents=True)
    except (InstallerError, ValueError) as error:
        issues = getattr(error, "issues", None) or [str(error)]
        shown = "; ".join(str(issue) for issue in issues[:3])
        raise IntakeError(filename, f"RECORD does not match the wheel: {shown}") from error
    except _UNREADABLE_MEMBER as error:
        raise IntakeError(filename, f"a member is not readable: {error}") from error


def _check_members(infos: list[zipfile.ZipInfo], filename: str, limits: IntakeLimits) -> None:
    """Refuse unsafe member names, symlinks, duplicates and sizes above the limits."""
    if len(infos) > limits.max_members:
        raise IntakeError(
            filename, f"too many members: {len(infos)}, the limit is {limits.max_members}"
        )
    seen: set[str] = set()
    total = 0
    for info in infos:
        member = info.filename
        problem = _member_name_problem(member)
        if problem is not None:
            raise IntakeError(filename, f"member {member!r} {problem}")
        if member in seen:
            # Two entries with one name: which one an unpacker keeps depends on the unpacker.
            raise IntakeError(filename, f"member {member!r} is duplicated")
        seen.add(member)
        if (info.external_attr >> 16) & _S_IFMT == _S_IFLNK:
            raise IntakeError(filename, f"member {member!r} is a symlink")
        if info.file_size > limits.max_member_bytes:
            raise IntakeError(
                filename,
                f"member {member!r} is too big uncompressed: {info.file_size} bytes, "
                f"the limit is {limits.max_member_bytes}",
            )
        total += info.file_size
    if total > limits.max_total_bytes:
        raise IntakeError(
            filename,
            f"members are too big uncompressed: {total} bytes in all, "
            f"the limit is {limits.max_total_bytes}",
        )


def _member_name_problem(member: str) -> str | None:
    """Why a member name could write outside the install directory, or None if it cannot."""
    if "\x00" in member:
        return "contains a NUL character"
    if "\\" in member:
        return "contains a backslash"
    if member.startswith("/") or _DRIVE.match(member):
        return "is an absolute path"
    if ".." in member.split("/"):
        return "contains a '..' path component"
    return None


def _dist_info(
    infos: list[zipfile.ZipInfo], filename: str, name: NormalizedName, version: Version
) -> str:
    """The one top-level ``.dist-info`` directory, which must name the wheel's project and version.

    Installers refuse a wheel with more than one (pip: "multiple .dist-info directories"), so
    we refuse it too.
    """
    found = sorted(
        {
            info.filename.split("/", 1)[0]
            for info in infos
            if "/" in info.filename and info.filename.split("/", 1)[0].endswith(".dist-info")
        }
    )
    if not found:
        raise IntakeError(filename, "no .dist-info directory, so no METADATA")
    if len(found) > 1:
        raise IntakeError(filename, f"more than one .dist-info directory: {', '.join(found)}")
    info_dir = found[0]
    stem = info_dir.removesuffix(".dist-info")
    dist_name, _, dist_version = stem.rpartition("-")
    try:
        matches = canonical(dist_name) == name and Version(dist_version) == version
    except InvalidVersion:
        matches = False
    if not matches:
        raise IntakeError(
            filename, f"{info_dir} does not match the wheel's name {name!r} and version {version}"
        )
    return info_dir


def _check_metadata(
    data: bytes, filename: str, name: NormalizedName, version: Version
) -> tuple[str | None, tuple[str, ...]]:
    """Requires-Python and Requires-Dist from METADATA, whose Name and Version must match.

    Parsed leniently (``parse_email``): the wheel was built from upstream's sdist, and its other
    fields are upstream's business. The two fields the index serves must parse, though, because
    installers read them before they download the wheel.
    """
    raw, _unparsed = parse_email(data)
    meta_name = raw.get("name")
    if meta_name is None:
        raise IntakeError(filename, "METADATA has no single Name")
    if canonical(meta_name) != name:
        raise IntakeError(filename, f"METADATA Name is {meta_name!r}, expected {name!r}")
    meta_version = raw.get("version")
    if meta_version is None:
        raise IntakeError(filename, "METADATA has no single Version")
    try:
        version_matches = Version(meta_version) == version
    except InvalidVersion:
        version_matches = False
    if not version_matches:
        raise IntakeError(filename, f"METADATA Version is {meta_version!r}, expected {version}")

    requires_python = raw.get("requires_python")
    if requires_python is not None:
        try:
            SpecifierSet(requires_python)
        except InvalidSpecifier as error:
            raise IntakeError(
                filename, f"METADATA Requires-Python {requires_python!r} is invalid"
            ) from error
    requires_dist = tuple(raw.get("requires_dist", []))
    for requirement in requires_dist:
        try:
            Requirement(requirement)
        except InvalidRequirement as error:
            raise IntakeError(
                filename, f"METADATA Requires-Dist {requirement!r} is invalid"
            ) from error
    return requires_python, requires_dist


def _existing(target: Path, wheel: AcceptedWheel) -> Path:
    """The published file if it holds the same bytes; a name never gets different bytes."""
    with target.open("rb") as file:
        sha256, _size = _hash(file)
    if sha256 != wheel.sha256:
        raise IntakeError(wheel.filename, "a different file with this name is already published")
    return target


def _fsync_directory(directory: Path) -> None:
    """Make the new name durable: the link lives in the directory's own data."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
