"""A builder's wheel upload on the master: checked, staged, validated, stored, recorded.

The upload streams to a staging file in a staging directory outside the published tree
(:func:`staged_upload`), is validated by :mod:`wheelfarm.farm.intake`, then stored, so no
partial file is ever published. One build publishes at most ``max_wheels`` wheels, no two of
them for the same tag (an installer would pick by build tag: the builder could choose which
one users get). What the master refuses is raised from :mod:`wheelfarm.farm.refusals`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import parse_wheel_filename
from sqlalchemy import Connection, func, select

from wheelfarm.builder.build_tags import wheel_build_line
from wheelfarm.farm.architecture import check_architecture
from wheelfarm.farm.builds import OwnedBuild
from wheelfarm.farm.dependencies import record_dependencies
from wheelfarm.farm.intake import (
    AcceptedWheel,
    IntakeError,
    IntakeLimits,
    inspect_wheel,
    store_wheel,
)
from wheelfarm.farm.refusals import (
    AlreadyPublished,
    MasterDiskFull,
    TargetRemoved,
    TooManyWheels,
    WheelTooLarge,
)
from wheelfarm.farm.registry import list_targets
from wheelfarm.farm.wheels import record_wheel
from wheelfarm.protocol import WheelDependencies
from wheelfarm.store.schema import build_files

__all__ = [
    "STALE_UPLOAD_SECONDS",
    "Upload",
    "accept_upload",
    "check_upload",
    "staged_upload",
    "sweep_stale_uploads",
]

#: A staging file untouched this long belongs to an upload that died with its master process
#: (uploads in progress write continuously); it is removed when a master starts.
STALE_UPLOAD_SECONDS = 3600.0


@dataclass(frozen=True)
class Upload:
    """A wheel as its builder announced it: the name, and the digest and size it must have."""

    filename: str
    sha256: str
    size: int


def sweep_stale_uploads(staging: Path, now: float) -> int:
    """Remove staging files left by uploads that died with a master; returns how many."""
    removed = 0
    for path in staging.glob("*.upload") if staging.is_dir() else ():
        with contextlib.suppress(FileNotFoundError):
            if now - path.stat().st_mtime > STALE_UPLOAD_SECONDS:
                path.unlink()
                removed += 1
    return removed


def check_upload(
    connection: Connection,
    build: OwnedBuild,
    upload: Upload,
    limits: IntakeLimits,
    max_wheels: int = 8,
) -> None:
    """Refuse, before a byte is read, a wheel too large, a file name already published, or one
    wheel more than a build may publish.

    Raises :class:`WheelTooLarge`, :class:`AlreadyPublished` or :class:`TooManyWheels`.
    """
    if upload.size > limits.max_wheel_bytes:
        raise WheelTooLarge(upload.size)
    published = connection.execute(
        select(build_files.c.sha256).where(build_files.c.filename == upload.filename)
    ).scalar()
    if published is not None:  # e.g. a pure wheel another target's build already gave us
        raise AlreadyPublished(upload.filename, published)
    count = connection.execute(
        select(func.count()).select_from(build_files).where(build_files.c.build_id == build.id)
    ).scalar_one()
    if count >= max_wheels:
        raise TooManyWheels(build.id, max_wheels)


@contextlib.contextmanager
def staged_upload(staging: Path) -> Iterator[Path]:
    """A fresh staging file in ``staging`` for one upload, removed when the block ends.

    A full disk, while staging or storing, becomes :class:`MasterDiskFull` (the builder retries).
    """
    temporary: Path | None = None
    try:
        staging.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=staging, suffix=".upload")
        os.close(handle)
        temporary = Path(name)
        yield temporary
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise MasterDiskFull() from error
        raise
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)


def accept_upload(
    connection: Connection,
    build: OwnedBuild,
    staged: Path,
    upload: Upload,
    dependencies: WheelDependencies | None,
    *,
    wheel_dir: Path,
    limits: IntakeLimits,
) -> AcceptedWheel:
    """Validate the staged wheel for the build's release and target (its objects too: they
    must run on the target's machine), store it, record it.

    Raises :class:`~wheelfarm.farm.intake.IntakeError` for a wheel intake refuses (one whose
    tags a wheel of the same build already covers, too), and :class:`TargetRemoved` when the
    build's target is no longer configured.
    """
    target = next((t for t in list_targets(connection) if t.name == build.target), None)
    if target is None:
        raise TargetRemoved(build.target)
    wheel = inspect_wheel(
        staged,
        filename=upload.filename,
        project=build.project,
        version=build.version,
        accepted_tags=target.compatible_tags(),
        expected_sha256=upload.sha256,
        expected_size=upload.size,
        limits=limits,
    )
    _check_tags_unclaimed(connection, build, wheel)
    _check_build_tag(staged, upload.filename, build.build_number)
    check_architecture(staged, upload.filename, target.name, target.platform)
    store_wheel(staged, wheel, wheel_dir / build.project)
    record_wheel(connection, wheel, build.id, build.version, build.target)
    if dependencies is not None:
        record_dependencies(connection, wheel.filename, dependencies)
    return wheel


def _check_tags_unclaimed(connection: Connection, build: OwnedBuild, wheel: AcceptedWheel) -> None:
    """Refuse a second wheel of one build for a tag: only the build tag would tell them apart."""
    for other, tags in connection.execute(
        select(build_files.c.filename, build_files.c.tags).where(build_files.c.build_id == build.id)
    ):
        shared = sorted({str(tag) for tag in wheel.tags} & set(tags.split()))
        if shared:
            raise IntakeError(
                wheel.filename, f"{other} of the same build already has the tag {shared[0]}"
            )


def _check_build_tag(staged: Path, filename: str, number: int) -> None:
    """Refuse a wheel whose build tag is not exactly the build's number (0: no tag), in its file
    name or in its ``WHEEL`` file's ``Build`` line.

    A builder that chose its own number could outrank a later rebuild (installers take the
    highest), or give an old name new bytes; the spec wants the name and WHEEL to agree.
    """
    tag = parse_wheel_filename(filename)[2]  # intake checked the name parses
    shown = f"{tag[0]}{tag[1]}" if tag else "none"
    wanted = str(number) if number else "none"
    if tag != ((number, "") if number else ()):
        raise IntakeError(
            filename, f"build tag {shown} in the file name, expected {wanted} (the job's)"
        )
    with zipfile.ZipFile(staged) as archive:
        line = wheel_build_line(archive)
    if line != (str(number) if number else None):
        raise IntakeError(
            filename, f"WHEEL says Build: {line or 'none'}, the file name's build tag is {wanted}"
        )
