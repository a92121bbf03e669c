"""A builder's wheel upload on the master: checked, staged, validated, stored, recorded.

The upload streams to a staging file under ``<wheel_dir>/.incoming`` (:func:`staged_upload`),
is validated by :mod:`wheelfarm.farm.intake`, then renamed into place, so no partial file is
ever published. What the master refuses is raised from :mod:`wheelfarm.farm.refusals`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, select

from wheelfarm.farm.architecture import check_architecture
from wheelfarm.farm.builds import OwnedBuild
from wheelfarm.farm.dependencies import record_dependencies
from wheelfarm.farm.intake import AcceptedWheel, IntakeLimits, inspect_wheel, store_wheel
from wheelfarm.farm.refusals import AlreadyPublished, MasterDiskFull, TargetRemoved, WheelTooLarge
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


def check_upload(connection: Connection, filename: str, size: int, limits: IntakeLimits) -> None:
    """Refuse, before a byte is read, a wheel too large or a file name already published.

    Raises :class:`WheelTooLarge` or :class:`AlreadyPublished`.
    """
    if size > limits.max_wheel_bytes:
        raise WheelTooLarge(size)
    published = connection.execute(
        select(build_files.c.sha256).where(build_files.c.filename == filename)
    ).scalar()
    if published is not None:  # e.g. a pure wheel another target's build already gave us
        raise AlreadyPublished(filename, published)


@contextlib.contextmanager
def staged_upload(wheel_dir: Path) -> Iterator[Path]:
    """A fresh staging file for one upload, removed when the block ends.

    A full disk, while staging or storing, becomes :class:`MasterDiskFull` (the builder retries).
    """
    temporary: Path | None = None
    try:
        staging = wheel_dir / ".incoming"
        staging.mkdir(parents=True, exist_ok=True)
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

    Raises :class:`~wheelfarm.farm.intake.IntakeError` for a wheel intake refuses, and
    :class:`TargetRemoved` when the build's target is no longer configured.
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
    check_architecture(staged, upload.filename, target.name, target.platform)
    store_wheel(staged, wheel, wheel_dir / build.project)
    record_wheel(connection, wheel, build.id, build.version, build.target)
    if dependencies is not None:
        record_dependencies(connection, wheel.filename, dependencies)
    return wheel
