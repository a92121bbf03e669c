"""The builder API: builders pull work over HTTP with their token; everything they send is checked.

Served by the master under :data:`~wheelfarm.protocol.API_PREFIX` (OpenAPI at ``/docs``).
A claimed job has a lease that heartbeats renew; a silent builder's job returns to the queue.
Uploads stream to a staging file, are validated by :mod:`wheelfarm.farm.intake`, then renamed
into place, so no partial file is ever published.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request, status
from pydantic import ValidationError
from sqlalchemy import Connection, Engine, case, insert, select, update
from sqlalchemy.sql.elements import ColumnElement

from wheelfarm.farm.dependencies import record_dependencies
from wheelfarm.farm.intake import IntakeError, IntakeLimits, inspect_wheel, store_wheel
from wheelfarm.farm.jobs import JobState, claim_job, expire_leases, settle_release
from wheelfarm.farm.registry import authenticate, command_of, list_targets, set_command
from wheelfarm.farm.wheels import record_wheel
from wheelfarm.protocol import (
    API_PREFIX,
    MAX_DEPENDENCIES_HEADER,
    BuildReport,
    BuildReportReply,
    ClaimReply,
    FileAccepted,
    Heartbeat,
    HeartbeatReply,
    Hello,
    HelloReply,
    Job,
    WheelDependencies,
)
from wheelfarm.store.marks import mark_changed
from wheelfarm.store.schema import build_files, builders, builds, jobs

__all__ = ["FarmConfig", "create_builder_app"]

_LOG_CAP = 1 << 20  # bytes of build log kept (its tail)


@dataclass(frozen=True)
class FarmConfig:
    """What the builder API needs besides the store."""

    index_url: str
    wheel_dir: Path
    lease_seconds: float = 300.0
    heartbeat_seconds: float = 30.0
    idle_retry_seconds: float = 10.0
    limits: IntakeLimits = field(default_factory=IntakeLimits)


def compress_log(text: str) -> tuple[bytes, int]:
    """The log's tail within the cap, zlib-compressed; returns (data, uncompressed size)."""
    raw = text.encode("utf-8", "replace")
    if len(raw) > _LOG_CAP:
        dropped = len(raw) - _LOG_CAP
        raw = f"[log truncated: {dropped} bytes dropped]\n".encode() + raw[-_LOG_CAP:]
    return zlib.compress(raw, 6), len(raw)


def _job_of(build: dict[str, Any]) -> tuple[ColumnElement[bool], ...]:
    """The WHERE clause that picks a build's job."""
    return (
        jobs.c.project == build["project"],
        jobs.c.version == build["version"],
        jobs.c.target == build["target"],
    )


def _transaction(request: Request) -> Iterator[Connection]:
    """One transaction per request: committed when the handler returns, else rolled back."""
    engine: Engine = request.app.state.engine
    with engine.begin() as connection:
        yield connection


# Committed before the response is sent (scope="function"): a builder told "ok" can rely on it.
Db = Annotated[Connection, Depends(_transaction, scope="function")]


def _builder_name(
    request: Request, connection: Db, authorization: Annotated[str | None, Header()] = None
) -> str:
    """The builder the bearer token belongs to; 401 for anything else."""
    scheme, _, token = (authorization or "").partition(" ")
    now = request.app.state.clock()
    name = authenticate(connection, token, now=now) if scheme == "Bearer" and token else None
    if name is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "unknown or revoked builder token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return name


Builder = Annotated[str, Depends(_builder_name)]


#: A staging file untouched this long belongs to an upload that died with its master process
#: (uploads in progress write continuously); it is removed when a master starts.
STALE_UPLOAD_SECONDS = 3600.0


def sweep_stale_uploads(staging: Path, now: float) -> int:
    """Remove staging files left by uploads that died with a master; returns how many."""
    removed = 0
    for path in staging.glob("*.upload") if staging.is_dir() else ():
        with contextlib.suppress(FileNotFoundError):
            if now - path.stat().st_mtime > STALE_UPLOAD_SECONDS:
                path.unlink()
                removed += 1
    return removed


def _dependencies(header: str | None) -> WheelDependencies | None:
    """The system dependencies a builder sent with a wheel; 422 naming what is wrong."""
    if header is None:
        return None
    try:
        return WheelDependencies.model_validate_json(header)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in error.errors()[:5]
        )
        raise HTTPException(422, f"X-Wheel-Dependencies: {problems}") from error


def create_builder_app(
    engine: Engine, config: FarmConfig, clock: Callable[[], float] = time.time
) -> FastAPI:
    """The builder API as an ASGI app."""
    sweep_stale_uploads(config.wheel_dir / ".incoming", time.time())
    app = FastAPI(title="wheelfarm builder API", version="1")
    app.state.engine = engine
    app.state.clock = clock

    def own_build(connection: Connection, build_id: int, name: str) -> dict[str, Any]:
        row = connection.execute(select(builds).where(builds.c.id == build_id)).mappings().first()
        if row is None or row["builder"] != name:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"build {build_id} is not yours")
        if row["status"] != "building":
            raise HTTPException(status.HTTP_409_CONFLICT, f"build {build_id} is already over")
        return dict(row)

    @app.post(f"{API_PREFIX}/hello")
    def hello(message: Hello, connection: Db, name: Builder) -> HelloReply:
        configured = {target.name for target in list_targets(connection)}
        if message.target not in configured:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"target {message.target!r} is not configured on the master "
                f"(wheelfarm targets add {message.target})",
            )
        connection.execute(
            update(builders)
            .where(builders.c.name == name)
            .values(
                target=message.target,
                python=message.python,
                os=message.os,
                label=message.label,
                # a builder that starts again was restarted on purpose: a stop is spent
                command=case((builders.c.command == "stop", None), else_=builders.c.command),
            )
        )
        return HelloReply(
            builder=name,
            lease_seconds=config.lease_seconds,
            heartbeat_seconds=config.heartbeat_seconds,
        )

    @app.post(f"{API_PREFIX}/claim")
    def claim(connection: Db, name: Builder) -> ClaimReply:
        me = connection.execute(
            select(builders.c.target, builders.c.command).where(builders.c.name == name)
        ).one()
        if me.target is None:
            raise HTTPException(status.HTTP_409_CONFLICT, "say hello first")
        if me.command in ("pause", "stop"):
            return ClaimReply(retry_after=config.idle_retry_seconds, command=me.command)
        if me.command == "skip":  # nothing is under way to skip
            set_command(connection, name, None)
        target = me.target
        now = clock()
        expire_leases(connection, now)
        job = claim_job(connection, target, name, now=now, lease_seconds=config.lease_seconds)
        if job is None:
            return ClaimReply(retry_after=config.idle_retry_seconds)
        build_id = connection.execute(
            insert(builds)
            .values(
                project=job.project,
                version=job.version,
                target=job.target,
                builder=name,
                started_at=now,
                status="building",
            )
            .returning(builds.c.id)
        ).scalar_one()
        return ClaimReply(
            job=Job(
                build_id=int(build_id),
                project=job.project,
                version=job.version,
                target=job.target,
                index_url=config.index_url,
            )
        )

    @app.post(f"{API_PREFIX}/builds/{{build_id}}/heartbeat")
    def heartbeat(
        build_id: int, message: Heartbeat, connection: Db, name: Builder
    ) -> HeartbeatReply:
        build = own_build(connection, build_id, name)
        connection.execute(
            update(jobs)
            .where(*_job_of(build), jobs.c.builder == name)
            .values(lease_expires=clock() + config.lease_seconds)
        )
        return HeartbeatReply.model_validate(
            {"command": command_of(connection, name) or "continue"}
        )

    @app.put(f"{API_PREFIX}/builds/{{build_id}}/files/{{filename}}", status_code=201)
    async def upload(
        build_id: int,
        filename: str,
        request: Request,
        connection: Db,
        name: Builder,
        x_wheel_sha256: Annotated[str, Header(pattern=r"^[0-9a-fA-F]{64}$")],
        content_length: Annotated[int, Header(ge=1)],
        x_wheel_dependencies: Annotated[
            str | None, Header(max_length=MAX_DEPENDENCIES_HEADER)
        ] = None,
    ) -> FileAccepted:
        build = own_build(connection, build_id, name)
        dependencies = _dependencies(x_wheel_dependencies)
        if content_length > config.limits.max_wheel_bytes:
            raise HTTPException(413, "wheel too large")
        published = connection.execute(
            select(build_files.c.sha256).where(build_files.c.filename == filename)
        ).scalar()
        if published is not None:  # e.g. a pure wheel another target's build already gave us
            raise HTTPException(
                status.HTTP_409_CONFLICT, f"{filename} is already published (sha256 {published})"
            )
        staging = config.wheel_dir / ".incoming"
        temporary: Path | None = None
        try:
            staging.mkdir(parents=True, exist_ok=True)
            handle, name_of_file = tempfile.mkstemp(dir=staging, suffix=".upload")
            temporary = Path(name_of_file)
            with os.fdopen(handle, "wb") as sink:
                async for chunk in request.stream():
                    sink.write(chunk)
            target = next(t for t in list_targets(connection) if t.name == build["target"])
            wheel = inspect_wheel(
                temporary,
                filename=filename,
                project=str(build["project"]),
                version=str(build["version"]),
                accepted_tags=target.compatible_tags(),
                expected_sha256=x_wheel_sha256,
                expected_size=content_length,
                limits=config.limits,
            )
            store_wheel(temporary, wheel, config.wheel_dir / str(build["project"]))
        except OSError as error:
            if error.errno == errno.ENOSPC:
                raise HTTPException(507, "the master's disk is full; try again later") from error
            raise
        except IntakeError as error:
            raise HTTPException(422, str(error)) from error
        except StopIteration as error:
            raise HTTPException(status.HTTP_409_CONFLICT, "the target was removed") from error
        finally:
            if temporary is not None:
                temporary.unlink(missing_ok=True)
        record_wheel(connection, wheel, build_id, str(build["version"]), str(build["target"]))
        if dependencies is not None:
            record_dependencies(connection, wheel.filename, dependencies)
        return FileAccepted(filename=wheel.filename, sha256=wheel.sha256, size=wheel.size)

    @app.post(f"{API_PREFIX}/builds/{{build_id}}/result")
    def result(
        build_id: int, message: BuildReport, connection: Db, name: Builder
    ) -> BuildReportReply:
        build = own_build(connection, build_id, name)
        uploaded = connection.execute(
            select(build_files.c.filename).where(build_files.c.build_id == build_id)
        ).first()
        outcome, reason = message.status, message.reason
        if outcome == "built" and uploaded is None:
            outcome, reason = "failed", "the builder reported success but uploaded no wheel"
        next_state = {
            "built": JobState.BUILT,
            "failed": JobState.FAILED,
            "not-yet-available": JobState.PENDING,  # the index lags: try again later
            "cancelled": JobState.PENDING,  # the builder stopped: another may build it now
        }[outcome]
        if outcome == "cancelled" and command_of(connection, name) == "skip":
            next_state, reason = JobState.FAILED, f"skipped by an operator on builder {name}"
            set_command(connection, name, None)
        log, log_bytes = compress_log(message.log)
        connection.execute(
            update(builds)
            .where(builds.c.id == build_id)
            .values(
                status="deferred" if outcome == "not-yet-available" else outcome,
                reason=reason,
                duration=message.duration,
                log=log,
                log_bytes=log_bytes,
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
                updated_at=clock(),
            )
        )
        # A wheel built here may serve other targets too (a pure wheel serves them all), and a
        # job that lost the race to such a wheel is covered: settle every job of the release.
        settle_release(connection, build["project"], build["version"], list_targets(connection))
        mark_changed(connection, [build["project"]])  # its page shows the outcome and the log
        return BuildReportReply(status=outcome)

    return app
