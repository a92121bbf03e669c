"""Operator actions on built wheels: import one built elsewhere, remove ours."""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version
from sqlalchemy import Connection, delete, insert, select

from wheelfarm.builder.build_tags import wheel_build_line
from wheelfarm.builder.sysdeps import analyse_wheel
from wheelfarm.errors import WheelfarmError
from wheelfarm.farm.architecture import check_architecture
from wheelfarm.farm.dependencies import forget_dependencies, record_dependencies
from wheelfarm.farm.intake import (
    AcceptedWheel,
    IntakeError,
    IntakeLimits,
    inspect_wheel,
    store_wheel,
)
from wheelfarm.farm.jobs import JobState, settle_release
from wheelfarm.farm.registry import list_targets
from wheelfarm.names import NormalizedName, canonical
from wheelfarm.store.marks import mark_changed
from wheelfarm.store.schema import build_files, builds, jobs
from wheelfarm.store.views import ProjectStatus, read_project

__all__ = ["ImportRefused", "Removed", "import_wheel", "record_wheel", "remove_wheels"]

IMPORTER = "import"  # the builder name recorded for imported wheels


class ImportRefused(WheelfarmError):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: not imported: {reason}")


def import_wheel(connection: Connection, path: Path, wheel_dir: Path, *, now: float) -> str:
    """Validate a wheel built elsewhere like an upload, store it, record it; returns its name.

    The release must be live here: the index publishes nothing the upstream does not have.
    Its target is the one it installs on among ours (else the first of its tags). Like an
    upload, every ELF object in it must be for the machine of each platform its tags claim
    (:func:`~wheelfarm.farm.architecture.check_architecture`): a wheel tagged
    ``linux_aarch64`` holding x86_64 code is refused. Its system dependencies are analysed
    here, against this machine's libraries: those it lacks end up unresolved.

    Its build tag may be any (a wheel rebuilt elsewhere outranks ours, as the operator meant:
    a later ``rebuild`` numbers past it), but the file name's and ``WHEEL``'s ``Build`` line
    must agree, as the wheel spec says, and it is recorded as the build's number.
    """
    try:
        name, version, build_tag, tags = parse_wheel_filename(path.name)
    except InvalidWheelFilename as error:
        raise ImportRefused(path, str(error)) from error
    project = canonical(name)
    view = read_project(connection, project)
    release = next((v for v in view.releases if _same_version(v, str(version))), None)
    if view.status is not ProjectStatus.LIVE or release is None:
        raise ImportRefused(path, f"{project} {version} is not a live release here")
    exists = connection.execute(
        select(build_files.c.filename).where(build_files.c.filename == path.name)
    ).scalar()
    if exists is not None:
        raise ImportRefused(path, "a file with this name is already published")
    targets = list_targets(connection)
    target = next(
        (t.name for t in targets if tags & t.compatible_tags()), str(sorted(map(str, tags))[0])
    )
    try:
        wheel = inspect_wheel(
            path,
            filename=path.name,
            project=project,
            version=release,
            accepted_tags=None,
            expected_sha256=None,
            expected_size=None,
            limits=IntakeLimits(),
        )
        for platform in sorted({tag.platform for tag in tags}):
            check_architecture(path, path.name, target, platform)
        _check_build_tag(path, build_tag)
        stored = store_wheel(path, wheel, wheel_dir / project)
    except IntakeError as error:
        raise ImportRefused(path, error.reason) from error
    build_id = connection.execute(
        insert(builds)
        .values(
            project=project,
            version=release,
            target=target,
            builder=IMPORTER,
            started_at=now,
            duration=0.0,
            status="built",
            reason=f"imported from {path}",
            build_number=build_tag[0] if build_tag else 0,
        )
        .returning(builds.c.id)
    ).scalar_one()
    record_wheel(connection, wheel, build_id, release, target)
    record_dependencies(connection, wheel.filename, analyse_wheel(stored))
    settle_release(connection, project, release, targets)
    return wheel.filename


def _check_build_tag(path: Path, build_tag: tuple[int, str] | tuple[()]) -> None:
    """Refuse a wheel whose ``WHEEL`` file's ``Build`` line differs from its name's build tag
    (PEP 427: they are the same); installers read the name, tools may read either."""
    named = f"{build_tag[0]}{build_tag[1]}" if build_tag else None
    with zipfile.ZipFile(path) as archive:
        line = wheel_build_line(archive)
    if line != named:
        raise ImportRefused(
            path,
            f"WHEEL says Build: {line or 'none'}, the file name's build tag is {named or 'none'} "
            "(the wheel spec wants them to agree)",
        )


def record_wheel(
    connection: Connection, wheel: AcceptedWheel, build_id: int, version: str, target: str
) -> None:
    """Record a stored wheel as published by a build (an upload or an import).

    ``version`` is the release's upstream spelling, which the wheel name may have normalised.
    """
    connection.execute(
        insert(build_files).values(
            filename=wheel.filename,
            build_id=build_id,
            project=wheel.project,
            version=version,
            target=target,
            sha256=wheel.sha256,
            size=wheel.size,
            tags=" ".join(sorted(str(tag) for tag in wheel.tags)),
            requires_python=wheel.requires_python,
            requires_dist=json.dumps(list(wheel.requires_dist)),
            metadata=wheel.metadata,
            metadata_sha256=hashlib.sha256(wheel.metadata).hexdigest(),
        )
    )
    mark_changed(connection, [wheel.project])


def _same_version(spelled: str, parsed: str) -> bool:
    """Upstream keeps its spelling (``1.0.0``); a wheel name may normalise it (``1.0``)."""
    try:
        return Version(spelled) == Version(parsed)
    except InvalidVersion:
        return spelled == parsed


@dataclass(frozen=True)
class Removed:
    files: list[str]
    jobs: int


def remove_wheels(
    connection: Connection, project: NormalizedName, version: str | None, wheel_dir: Path
) -> Removed:
    """Unpublish our wheels of a project (or release) and drop its jobs.

    Without a skip the release is queued again at the next schedule, so a rebuild gives the
    same file name new bytes: installers that cached the old file will see a hash mismatch.
    """
    query = select(build_files.c.filename).where(build_files.c.project == project)
    jobs_query = delete(jobs).where(jobs.c.project == project)
    if version is not None:
        query = query.where(build_files.c.version == version)
        jobs_query = jobs_query.where(jobs.c.version == version)
    names = list(connection.execute(query).scalars())
    forget_dependencies(connection, names)
    for name in names:
        connection.execute(delete(build_files).where(build_files.c.filename == name))
        (wheel_dir / project / name).unlink(missing_ok=True)
        (wheel_dir / project / f"{name}.metadata").unlink(missing_ok=True)
    dropped = connection.execute(jobs_query.where(jobs.c.state != JobState.BUILDING.value)).rowcount
    mark_changed(connection, [project])
    return Removed(names, dropped)
