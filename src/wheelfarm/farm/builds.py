"""A build's life on the master, as its builder drives it: hello, claim, heartbeat, result.

Plain functions over a :class:`~sqlalchemy.Connection` (the caller owns the transaction), with
typed inputs and results; what the master refuses is raised from :mod:`wheelfarm.farm.refusals`.
The builder API (:mod:`wheelfarm.farm.api`) only authenticates, parses, calls these and replies.
Uploads are :mod:`wheelfarm.farm.uploads`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, case, insert, select, update
from sqlalchemy.sql.elements import ColumnElement

from wheelfarm.farm.failures import triaged_log
from wheelfarm.farm.jobs import (
    JobState,
    claim_job,
    expire_leases,
    settle_release,
    withdraw_build_wheels,
)
from wheelfarm.farm.pause import farm_paused
from wheelfarm.farm.refusals import BuildOver, HelloFirst, NotYourBuild, TargetNotConfigured
from wheelfarm.farm.registry import command_of, list_targets, set_command
from wheelfarm.farm.stored_logs import LOG_CAP, CompressedLog, compress_log
from wheelfarm.names import NormalizedName
from wheelfarm.protocol import BuildReport, Command, Hello
from wheelfarm.store.marks import mark_changed
from wheelfarm.store.schema import build_files, builders, builds, jobs

__all__ = [
    "LOG_CAP",
    "ClaimOutcome",
    "CompressedLog",
    "OwnedBuild",
    "StartedBuild",
    "claim_build",
    "compress_log",
    "finish_build",
    "own_build",
    "register_builder",
    "renew_lease",
]

#: An operator's command as stored (``builders.command``), typed for the protocol.
_COMMANDS: dict[str, Command] = {
    "continue": "continue",
    "skip": "skip",
    "pause": "pause",
    "stop": "stop",
}


@dataclass(frozen=True)
class OwnedBuild:
    """A build under way, checked to belong to the builder asking."""

    id: int
    project: NormalizedName
    version: str
    target: str
    builder: str
    build_number: int = 0  # the build tag its wheels must carry


@dataclass(frozen=True)
class StartedBuild:
    """A job a builder claimed, and the build that records the attempt."""

    build_id: int
    project: NormalizedName
    version: str
    target: str
    build_number: int = 0  # the build tag its wheels must carry


@dataclass(frozen=True)
class ClaimOutcome:
    """What a claim gave: a build, or none (``command`` says why when an operator withholds)."""

    build: StartedBuild | None
    command: Command = "continue"


def register_builder(connection: Connection, builder: str, hello: Hello) -> None:
    """Record what a builder builds for and where it runs; a pending ``stop`` is spent.

    Raises :class:`TargetNotConfigured` for a target the master does not build for.
    """
    if hello.target not in {target.name for target in list_targets(connection)}:
        raise TargetNotConfigured(hello.target)
    connection.execute(
        update(builders)
        .where(builders.c.name == builder)
        .values(
            target=hello.target,
            python=hello.python,
            os=hello.os,
            label=hello.label,
            # a builder that starts again was restarted on purpose: a stop is spent
            command=case((builders.c.command == "stop", None), else_=builders.c.command),
        )
    )


def claim_build(
    connection: Connection,
    builder: str,
    *,
    now: float,
    lease_seconds: float,
    wheel_dir: Path | None = None,
) -> ClaimOutcome:
    """Hand the builder the next job for its target, under a lease, and open its build.

    Nothing is handed out while an operator has the builder (or the farm) paused or stopped.
    Raises :class:`HelloFirst` for a builder that has not said which target it builds for.
    Leases that ran out are expired first, and their builds' wheels withdrawn from
    ``wheel_dir``.
    """
    me = connection.execute(
        select(builders.c.target, builders.c.command).where(builders.c.name == builder)
    ).one()
    if me.target is None:
        raise HelloFirst()
    if me.command in ("pause", "stop"):
        return ClaimOutcome(None, _COMMANDS[me.command])
    if farm_paused(connection) is not None:  # the whole farm (see wheelfarm.farm.pause)
        return ClaimOutcome(None, "pause")
    if me.command == "skip":  # nothing is under way to skip
        set_command(connection, builder, None)
    expire_leases(connection, now, wheel_dir)
    job = claim_job(connection, me.target, builder, now=now, lease_seconds=lease_seconds)
    if job is None:
        return ClaimOutcome(None)
    build_id = connection.execute(
        insert(builds)
        .values(
            project=job.project,
            version=job.version,
            target=job.target,
            builder=builder,
            started_at=now,
            status="building",
            build_number=job.build_number,
        )
        .returning(builds.c.id)
    ).scalar_one()
    return ClaimOutcome(
        StartedBuild(int(build_id), job.project, job.version, job.target, job.build_number)
    )


def own_build(connection: Connection, build_id: int, builder: str) -> OwnedBuild:
    """The build, if it is ``builder``'s and still under way.

    Raises :class:`NotYourBuild` (none such, or another's) or :class:`BuildOver`.
    """
    row = connection.execute(select(builds).where(builds.c.id == build_id)).first()
    if row is None or row.builder != builder:
        raise NotYourBuild(build_id)
    if row.status != "building":
        raise BuildOver(build_id)
    return OwnedBuild(row.id, row.project, row.version, row.target, row.builder, row.build_number)


def renew_lease(
    connection: Connection, build_id: int, builder: str, *, now: float, lease_seconds: float
) -> Command:
    """Extend the lease of the builder's job; returns the operator's command for the builder."""
    build = own_build(connection, build_id, builder)
    connection.execute(
        update(jobs)
        .where(*_job_of(build), jobs.c.builder == builder)
        .values(lease_expires=now + lease_seconds)
    )
    return _COMMANDS[command_of(connection, builder) or "continue"]


_NEXT_STATE = {
    "built": JobState.BUILT,
    "failed": JobState.FAILED,
    "not-yet-available": JobState.PENDING,  # the index lags: try again later
    "cancelled": JobState.PENDING,  # the builder stopped: another may build it now
}


def finish_build(
    connection: Connection,
    build_id: int,
    builder: str,
    report: BuildReport,
    *,
    now: float,
    wheel_dir: Path | None = None,
) -> str:
    """Record how the build ended and settle its job; returns the outcome recorded.

    A ``built`` report with no wheel uploaded is recorded as failed. A ``cancelled`` build
    whose builder an operator told to skip fails its job (named as skipped); else it goes back
    to the queue, as does one whose release the index does not serve yet. The wheels of a
    build that did not end built are withdrawn (from ``wheel_dir`` too, when given). A failed
    or deferred build is triaged: its category and most telling log line are recorded
    (:mod:`wheelfarm.farm.failures`).
    """
    build = own_build(connection, build_id, builder)
    uploaded = connection.execute(
        select(build_files.c.filename).where(build_files.c.build_id == build_id)
    ).first()
    outcome, reason = report.status, report.reason
    if outcome == "built" and uploaded is None:
        outcome, reason = "failed", "the builder reported success but uploaded no wheel"
    if outcome != "built":
        withdraw_build_wheels(connection, [build_id], wheel_dir)
    next_state = _NEXT_STATE[outcome]
    if outcome == "cancelled" and command_of(connection, builder) == "skip":
        next_state, reason = JobState.FAILED, f"skipped by an operator on builder {builder}"
        set_command(connection, builder, None)
    status = "deferred" if outcome == "not-yet-available" else outcome
    # The master reads why a build failed from its log (wheelfarm.farm.triage).
    stored = triaged_log(report.log, status, reason)
    reason = stored.reason
    log = compress_log(stored.text)
    connection.execute(
        update(builds)
        .where(builds.c.id == build_id)
        .values(
            status=status,
            reason=reason,
            category=stored.category,
            duration=report.duration,
            log=log.data,
            log_bytes=log.size,
        )
    )
    connection.execute(
        update(jobs)
        .where(*_job_of(build))
        .values(
            state=next_state.value,
            reason=reason if next_state is JobState.FAILED else None,
            # a deferred job lets the others go first; a cancelled one keeps its place
            urgent=jobs.c.urgent if outcome == "cancelled" else False,
            builder=None,
            lease_expires=None,
            updated_at=now,
        )
    )
    # A wheel built here may serve other targets too (a pure wheel serves them all), and a
    # job that lost the race to such a wheel is covered: settle every job of the release.
    settle_release(connection, build.project, build.version, list_targets(connection))
    mark_changed(connection, [build.project])  # its page shows the outcome and the log
    return outcome


def _job_of(build: OwnedBuild) -> tuple[ColumnElement[bool], ...]:
    """The WHERE clause that picks a build's job."""
    return (
        jobs.c.project == build.project,
        jobs.c.version == build.version,
        jobs.c.target == build.target,
    )
