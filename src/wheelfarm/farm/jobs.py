"""The build queue: which (release, target) pairs need a build, and handing them out.

A release needs a build for a target when it has a source distribution upstream, is live (not
deleted or quarantined), is not skipped by an operator, its Requires-Python admits the target's
Python, and no wheel we hold (upstream's or our own) installs on the target. Every such decision
is a row in ``jobs``, so a project page can say why a target has no wheel.

Order: jobs scheduled from the live changelog are ``urgent`` and go first; then the backlog,
newest release first (``priority`` is the release's order key). Claiming is one indexed query
(``jobs_claim_idx``), so it stays fast with a million releases queued.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from sqlalchemy import Connection, bindparam, delete, or_, select, text, update

from wheelfarm.farm.dependencies import forget_dependencies
from wheelfarm.farm.stored_logs import compress_log
from wheelfarm.names import SDIST_SUFFIXES, NormalizedName, build_number
from wheelfarm.store.dialect import upsert
from wheelfarm.store.marks import mark_changed
from wheelfarm.store.schema import build_files, builds, files, jobs, releases, skips
from wheelfarm.store.views import ProjectStatus, ReleaseView, read_project
from wheelfarm.targets import Target

__all__ = [
    "Claim",
    "JobState",
    "claim_job",
    "expire_leases",
    "prioritise",
    "projects_with_sources",
    "schedule_project",
    "schedule_target",
    "settle_release",
    "withdraw_build_wheels",
]


class JobState(enum.Enum):
    PENDING = "pending"
    BUILDING = "building"
    BUILT = "built"
    FAILED = "failed"
    SKIPPED = "skipped"


_SETTLED = {JobState.BUILDING.value, JobState.BUILT.value, JobState.FAILED.value}


@dataclass(frozen=True)
class Claim:
    """A job handed to a builder."""

    project: NormalizedName
    version: str
    target: str
    attempts: int
    build_number: int = 0  # the build tag the build's wheels must carry


def _wheel_tags(filename: str) -> frozenset[Tag]:
    try:
        return parse_wheel_filename(filename)[3]
    except InvalidWheelFilename:
        return frozenset()


def _source_file(release: ReleaseView) -> bool:
    return any(
        f.python_version == "source" or f.filename.endswith(SDIST_SUFFIXES) for f in release.files
    )


def _decide(
    release: ReleaseView,
    target: Target,
    accepted: frozenset[Tag],
    skip_reason: str | None,
    built_tags: Sequence[frozenset[Tag]],
) -> tuple[JobState, str | None] | None:
    """The job state a (release, target) pair should have; None: no job (binary only)."""
    if not _source_file(release):
        return None  # binary only: nothing to build from
    if skip_reason is not None:
        return JobState.SKIPPED, f"skipped: {skip_reason}"
    requires_python = release.requires_python
    if not target.admits(requires_python):
        return (
            JobState.SKIPPED,
            f"Requires-Python {requires_python} excludes Python {target.python}",
        )
    for file in release.files:
        if file.filename.endswith(".whl") and _wheel_tags(file.filename) & accepted:
            return JobState.SKIPPED, f"upstream wheel {file.filename} installs on this target"
    if any(tags & accepted for tags in built_tags):
        return JobState.BUILT, None
    return JobState.PENDING, None


def _our_wheels(
    connection: Connection, project: NormalizedName
) -> dict[str, list[tuple[frozenset[Tag], int]]]:
    """The tags and build number of each wheel we hold of the project, by version.

    A wheel we built counts for every target it installs on, not only the one it was built
    for: a pure-Python wheel built once serves them all.
    """
    built: dict[str, list[tuple[frozenset[Tag], int]]] = {}
    for row in connection.execute(
        select(build_files.c.version, build_files.c.filename).where(
            build_files.c.project == project
        )
    ):
        built.setdefault(row.version, []).append(
            (_wheel_tags(row.filename), build_number(row.filename))
        )
    return built


def schedule_project(
    connection: Connection,
    project: NormalizedName,
    targets: Iterable[Target],
    *,
    now: float,
    urgent: bool = False,
) -> int:
    """Bring the project's jobs in line with its truth; returns how many jobs became pending.

    Jobs already building, built or failed keep their state (a rebuild resets them); pending
    jobs of releases that no longer need a build are withdrawn.
    """
    view = read_project(connection, project)
    live = view.releases if view.status is ProjectStatus.LIVE else {}
    skip_rows = connection.execute(select(skips).where(skips.c.project == project)).mappings()
    skipped = {row["version"]: row["reason"] for row in skip_rows}
    built = _our_wheels(connection, project)
    priority = {
        row.version: row.live_key
        for row in connection.execute(
            select(releases.c.version, releases.c.live_key).where(releases.c.project == project)
        )
    }
    existing: dict[tuple[str, str], str] = {}
    numbers: dict[tuple[str, str], int] = {}  # a rebuild's number (0: none)
    for row in connection.execute(
        select(jobs.c.version, jobs.c.target, jobs.c.state, jobs.c.build_number).where(
            jobs.c.project == project
        )
    ):
        existing[(row.version, row.target)] = row.state
        numbers[(row.version, row.target)] = row.build_number
    wanted: dict[tuple[str, str], tuple[JobState, str | None]] = {}
    targets = list(targets)
    names = {target.name for target in targets}
    for target in targets:
        accepted = target.compatible_tags()
        for version, release in live.items():
            skip = skipped.get(version, skipped.get(""))
            # a rebuild waits for a wheel of its own build number: the old one does not count
            wanted_number = numbers.get((version, target.name), 0)
            ours = [tags for tags, n in built.get(version, []) if n >= wanted_number]
            decision = _decide(release, target, accepted, skip, ours)
            if decision is not None:
                wanted[(version, target.name)] = decision
    newly_pending = 0
    wanted_changed = False
    for (version, target_name), (state, reason) in wanted.items():
        current = existing.get((version, target_name))
        if current in _SETTLED or current == state.value:
            continue  # a build's outcome stands until `rebuild` resets it
        newly_pending += state is JobState.PENDING
        job = {
            "project": project,
            "version": version,
            "target": target_name,
            "state": state.value,
            "urgent": urgent,
            "priority": priority.get(version, 0),
            "reason": reason,
            "updated_at": now,
        }
        connection.execute(upsert(connection, jobs, job, ["project", "version", "target"]))
        wanted_changed = True
    # only the given targets' jobs are ours to withdraw (a new target's backfill passes one)
    withdrawn = [
        key
        for key, state in existing.items()
        if state == "pending" and key[1] in names and key not in wanted
    ]
    for version, target_name in withdrawn:
        connection.execute(
            delete(jobs).where(
                jobs.c.project == project, jobs.c.version == version, jobs.c.target == target_name
            )
        )
    mark_changed(connection, [project] if wanted_changed or withdrawn else [])
    return newly_pending


def projects_with_sources(connection: Connection) -> list[NormalizedName]:
    """Every project that has (or had) a source file: the ones a new target may need jobs for."""
    rows = connection.execute(
        select(files.c.project).where(files.c.python_version == "source").distinct()
    ).scalars()
    named = connection.execute(
        select(files.c.project)
        .where(or_(*(files.c.filename.endswith(suffix) for suffix in SDIST_SUFFIXES)))
        .distinct()
    ).scalars()
    return sorted({NormalizedName(name) for name in [*rows, *named]})


def schedule_target(
    connection: Connection, target: Target, projects: Iterable[NormalizedName], *, now: float
) -> int:
    """Queue the given projects' existing releases for a target just added; returns how many
    jobs became pending.

    A new target would otherwise get jobs only as projects next change. The backlog is not
    urgent: fresh releases still go first. The usual rules apply (binary-only releases, skips,
    Requires-Python, upstream wheels, our pure wheels), and only the new target's jobs are
    touched.
    """
    return sum(schedule_project(connection, name, [target], now=now) for name in projects)


def prioritise(connection: Connection, project: str, version: str) -> int:
    """Make a release's pending jobs urgent (an operator asked for it); returns how many."""
    return connection.execute(
        update(jobs)
        .where(
            jobs.c.project == project,
            jobs.c.version == version,
            jobs.c.state == JobState.PENDING.value,
        )
        .values(urgent=True)
    ).rowcount


def settle_release(
    connection: Connection, project: str, version: str, targets: Iterable[Target]
) -> int:
    """Mark built every job of a release that a wheel we hold installs on; returns how many.

    Called when a build ends: a pure-Python wheel built for one target also serves the others,
    whether their jobs are pending or lost the race to upload the same file name. A job being
    rebuilt (build number N) is settled only by a wheel numbered N or more.
    """
    ours = [
        (_wheel_tags(name), build_number(name))
        for name in connection.execute(
            select(build_files.c.filename).where(
                build_files.c.project == project, build_files.c.version == version
            )
        ).scalars()
    ]
    settled = 0
    for target in targets:
        accepted = target.compatible_tags()
        covering = [number for tags, number in ours if tags & accepted]
        if covering:
            settled += connection.execute(
                update(jobs)
                .where(
                    jobs.c.project == project,
                    jobs.c.version == version,
                    jobs.c.target == target.name,
                    jobs.c.state.in_([JobState.PENDING.value, JobState.FAILED.value]),
                    # a rebuild is settled only by a wheel of its build number (or later)
                    jobs.c.build_number <= max(covering),
                )
                .values(state=JobState.BUILT.value, reason=None)
            ).rowcount
    mark_changed(connection, [project] if settled else [])
    return settled


def withdraw_build_wheels(
    connection: Connection, build_ids: Sequence[int], wheel_dir: Path | None
) -> list[str]:
    """Unpublish the wheels of builds that did not end built; returns their file names.

    Only a build its builder reported built publishes wheels: one that failed, expired or was
    cancelled may have uploaded anything before it ended. The rows go in the caller's
    transaction and the project is marked for republishing; the files are removed from
    ``wheel_dir`` (when given) at once, as :func:`~wheelfarm.farm.wheels.remove_wheels` does.
    """
    if not build_ids:
        return []
    rows = connection.execute(
        select(build_files.c.filename, build_files.c.project).where(
            build_files.c.build_id.in_(list(build_ids))
        )
    ).all()
    names = [row.filename for row in rows]
    if not names:
        return []
    forget_dependencies(connection, names)
    connection.execute(delete(build_files).where(build_files.c.filename.in_(names)))
    mark_changed(connection, sorted({row.project for row in rows}))
    if wheel_dir is not None:
        for filename, project in rows:
            (wheel_dir / project / filename).unlink(missing_ok=True)
            (wheel_dir / project / f"{filename}.metadata").unlink(missing_ok=True)
    return names


def expire_leases(connection: Connection, now: float, wheel_dir: Path | None = None) -> int:
    """Return jobs whose builder went silent to the queue; returns how many.

    Their unfinished builds are closed as failed, so a late report from the silent builder
    is refused rather than recorded over the new attempt, and what they uploaded is withdrawn
    (:func:`withdraw_build_wheels`); each gets a log saying it died.
    """
    expired = connection.execute(
        select(jobs.c.project, jobs.c.version, jobs.c.target, jobs.c.builder).where(
            jobs.c.state == JobState.BUILDING.value, jobs.c.lease_expires < now
        )
    ).all()
    mark_changed(connection, [row.project for row in expired])
    for project, version, target, builder in expired:
        open_builds = (
            builds.c.project == project,
            builds.c.version == version,
            builds.c.target == target,
            builds.c.builder == builder,
            builds.c.status == JobState.BUILDING.value,
        )
        ids = list(connection.execute(select(builds.c.id).where(*open_builds)).scalars())
        withdraw_build_wheels(connection, ids, wheel_dir)
        connection.execute(
            update(builds)
            .where(*open_builds)
            .values(status=JobState.FAILED.value, reason="lease expired: the builder went silent")
        )
        _close_died_builds(connection, ids, now)
        connection.execute(
            update(jobs)
            .where(jobs.c.project == project, jobs.c.version == version, jobs.c.target == target)
            .values(state=JobState.PENDING.value, builder=None, lease_expires=None, updated_at=now)
        )
    return len(expired)


def _close_died_builds(connection: Connection, ids: Sequence[int], now: float) -> None:
    """Give builds that died without a log one that says so (wheelfarm.farm.failures).

    Imported here: the triage rules it loads are compiled at import, and the commands that
    only list the queue (``targets list``, ``builds``) need none of it.
    """
    from wheelfarm.farm.failures import DiedBuild, died_log

    for row in connection.execute(select(builds).where(builds.c.id.in_(ids))):
        died = DiedBuild(row.project, row.version, row.target, row.builder, row.started_at)
        stored = died_log(died, now, row.reason or "the builder went silent")
        log = compress_log(stored.text)
        connection.execute(
            update(builds)
            .where(builds.c.id == row.id)
            .values(category=stored.category, log=log.data, log_bytes=log.size)
        )


_CLAIM_SQLITE = text(
    """
    UPDATE jobs SET state = 'building', builder = :builder, lease_expires = :expires,
                    attempts = attempts + 1, updated_at = :now
    WHERE (project, version, target) = (
        SELECT project, version, target FROM jobs
        WHERE target = :target AND state = 'pending'
        ORDER BY urgent DESC, priority DESC LIMIT 1)
    RETURNING project, version, target, attempts, build_number
    """
)

_ANY_PENDING = (
    select(jobs.c.project)
    .where(jobs.c.target == bindparam("target"), jobs.c.state == JobState.PENDING.value)
    .limit(1)
)

_CLAIM_POSTGRESQL = text(
    """
    WITH next AS (
        SELECT project, version, target FROM jobs
        WHERE target = :target AND state = 'pending'
        ORDER BY urgent DESC, priority DESC LIMIT 1
        FOR UPDATE SKIP LOCKED)
    UPDATE jobs SET state = 'building', builder = :builder, lease_expires = :expires,
                    attempts = jobs.attempts + 1, updated_at = :now
    FROM next
    WHERE jobs.project = next.project AND jobs.version = next.version
      AND jobs.target = next.target
    RETURNING jobs.project, jobs.version, jobs.target, jobs.attempts,
              jobs.build_number
    """
)


def claim_job(
    connection: Connection, target: str, builder: str, *, now: float, lease_seconds: float
) -> Claim | None:
    """Lease the most urgent pending job for ``target`` to ``builder`` (None: nothing to do).

    One statement: concurrent builders never get the same job (SQLite serialises writers;
    PostgreSQL skips rows another transaction has locked). A read first: with nothing queued
    for the target, an idle builder's claim writes nothing (on SQLite even an UPDATE that
    matches no row takes the write lock, and waits for the presence writer's).
    """
    if connection.execute(_ANY_PENDING, {"target": target}).first() is None:
        return None
    statement = _CLAIM_POSTGRESQL if connection.dialect.name == "postgresql" else _CLAIM_SQLITE
    row = connection.execute(
        statement,
        {"target": target, "builder": builder, "expires": now + lease_seconds, "now": now},
    ).first()
    if row is None:
        return None
    mark_changed(connection, [row.project])
    return Claim(
        NormalizedName(row.project), row.version, row.target, row.attempts, row.build_number
    )
