"""Give a built wheel a build tag: in its file name, in its ``WHEEL`` file, with a valid RECORD.

A rebuild of a release must not give an existing file name new bytes (lock files pin names and
hashes), so wheelfarm numbers rebuilds with the wheel spec's build tag (PEP 427:
``demo-1.0-1-py3-none-any.whl``; installers prefer the higher number when all else is equal).
pip cannot be told a build number for an arbitrary build backend, so the builder rewrites the
wheel after ``pip wheel``, as ``wheel tags --build N`` does: the file name gets the tag, the
``.dist-info/WHEEL`` file a ``Build: N`` line (the spec says the two agree), and ``RECORD`` the
new hash and size of ``WHEEL``. Every other member is copied as it is, in its order, with its
date, mode and compression, so the rebuilt wheel differs from pip's only where it must.

The master's intake reads the ``Build`` line back with :func:`wheel_build_line`.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import shutil
import zipfile
from email.parser import HeaderParser
from pathlib import Path

from installer.records import Hash, RecordEntry, parse_record_file
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from wheelfarm.errors import WheelfarmError

__all__ = [
    "BuildTagError",
    "dist_info_member",
    "retag_wheel",
    "tagged_filename",
    "wheel_build_line",
]

_ZIP64_LIMIT = (1 << 31) - 1  # members at least this large need zip64 written up front


class BuildTagError(WheelfarmError):
    """A wheel that cannot be given a build tag: its name, WHEEL or RECORD is unreadable."""


def tagged_filename(filename: str, number: int) -> str:
    """``filename`` with the build tag ``number`` (0: none), replacing any tag it had."""
    parse_wheel_filename(filename)  # raises InvalidWheelFilename for anything else
    parts = filename.removesuffix(".whl").split("-")
    head, tags = parts[:2], parts[-3:]
    return "-".join([*head, *([str(number)] if number else []), *tags]) + ".whl"


def dist_info_member(archive: zipfile.ZipFile, name: str) -> str | None:
    """The name of the top-level ``*.dist-info/<name>`` member, if the archive has one."""
    for member in archive.namelist():
        top, _, rest = member.partition("/")
        if top.endswith(".dist-info") and rest == name:
            return member
    return None


def wheel_build_line(archive: zipfile.ZipFile) -> str | None:
    """The ``Build`` value of the wheel's ``.dist-info/WHEEL`` file (None: none, or no WHEEL)."""
    member = dist_info_member(archive, "WHEEL")
    if member is None:
        return None
    headers = HeaderParser().parsestr(archive.read(member).decode("utf-8", "replace"))
    value = headers.get("Build")
    return None if value is None else value.strip()


def _with_build(wheel_file: bytes, number: int) -> bytes:
    """The WHEEL file's text with its ``Build`` lines replaced by ``Build: number``."""
    lines = wheel_file.decode("utf-8").splitlines()
    kept = [line for line in lines if not line.lower().startswith("build:")]
    while kept and not kept[-1].strip():
        kept.pop()
    return ("\n".join([*kept, f"Build: {number}"]) + "\n").encode("utf-8")


def _record_with(record: bytes, path: str, data: bytes) -> bytes:
    """RECORD's rows with ``path``'s hash and size those of ``data``."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    found = False
    try:
        for row in parse_record_file(record.decode("utf-8").splitlines()):
            if row[0] == path:
                found = True
                entry = RecordEntry(path, Hash("sha256", digest), len(data))
                writer.writerow(entry.to_row())
            else:
                writer.writerow(row)
    except (ValueError, UnicodeDecodeError) as error:  # installer's InvalidRecordEntry too
        raise BuildTagError(f"RECORD does not parse: {error}") from error
    if not found:
        raise BuildTagError(f"RECORD does not list {path}")
    return out.getvalue().encode("utf-8")


def retag_wheel(path: Path, number: int) -> Path:
    """Rewrite the wheel at ``path`` with build tag ``number``; returns the new file's path.

    The new file is written beside the old one, which is removed. ``number`` 0 leaves the wheel
    as it is. Raises :class:`BuildTagError` when the wheel lacks a WHEEL or RECORD file.
    """
    if number == 0:
        return path
    try:
        target = path.with_name(tagged_filename(path.name, number))
        partial = path.with_name(f".{target.name}.partial")
        _rewrite(path, partial, number)
        partial.replace(target)
    except (InvalidWheelFilename, zipfile.BadZipFile, OSError, UnicodeDecodeError) as error:
        raise BuildTagError(f"{path.name}: {error}") from error
    if target != path:
        path.unlink()
    return target


def _rewrite(path: Path, partial: Path, number: int) -> None:
    """Write ``path``'s wheel to ``partial`` with build tag ``number`` in WHEEL and RECORD."""
    with zipfile.ZipFile(path) as source:
        wheel_member = dist_info_member(source, "WHEEL")
        record_member = dist_info_member(source, "RECORD")
        if wheel_member is None or record_member is None:
            raise BuildTagError(f"{path.name} has no .dist-info/WHEEL or RECORD")
        wheel_file = _with_build(source.read(wheel_member), number)
        record = _record_with(source.read(record_member), wheel_member, wheel_file)
        with zipfile.ZipFile(partial, "w") as rewritten:
            for info in source.infolist():
                if info.filename == wheel_member:
                    rewritten.writestr(_fresh(info), wheel_file)
                elif info.filename == record_member:
                    rewritten.writestr(_fresh(info), record)
                else:
                    with (
                        source.open(info) as reader,
                        rewritten.open(
                            _fresh(info), "w", force_zip64=info.file_size >= _ZIP64_LIMIT
                        ) as writer,
                    ):
                        shutil.copyfileobj(reader, writer, 1 << 20)


def _fresh(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    """A copy of a member's header to write anew: same name, date, mode and compression."""
    copy = zipfile.ZipInfo(info.filename, info.date_time)
    copy.compress_type = info.compress_type
    copy.external_attr = info.external_attr
    copy.create_system = info.create_system
    return copy
