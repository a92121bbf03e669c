"""The builder API: builders pull work over HTTP with their token; everything they send is checked.

Served by the master under :data:`~wheelfarm.protocol.API_PREFIX` (OpenAPI at ``/docs``).
A claimed job has a lease that heartbeats renew; a silent builder's job returns to the queue.
Uploads stream to a staging file, are validated by :mod:`wheelfarm.farm.intake`, then renamed
into place, so no partial file is ever published.

The routes authenticate, parse, call a service (:mod:`wheelfarm.farm.builds`,
:mod:`wheelfarm.farm.uploads`) and reply; a refusal the service raises
(:mod:`wheelfarm.farm.refusals`) becomes its HTTP code here, in :data:`REFUSAL_STATUS`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy import Connection, Engine

from wheelfarm.errors import WheelfarmError
from wheelfarm.farm.api_docs import add_offline_docs
from wheelfarm.farm.builds import (
    claim_build,
    finish_build,
    own_build,
    register_builder,
    renew_lease,
)
from wheelfarm.farm.intake import IntakeError, IntakeLimits
from wheelfarm.farm.refusals import BuildConflict, MasterDiskFull, NotYourBuild, WheelTooLarge
from wheelfarm.farm.registry import authenticate
from wheelfarm.farm.uploads import (
    Upload,
    accept_upload,
    check_upload,
    staged_upload,
    sweep_stale_uploads,
)
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

__all__ = ["REFUSAL_STATUS", "FarmConfig", "create_builder_app"]

#: The HTTP code of each refusal a service raises (the first class that matches wins).
REFUSAL_STATUS: tuple[tuple[type[WheelfarmError], int], ...] = (
    (NotYourBuild, 404),
    (BuildConflict, 409),
    (WheelTooLarge, 413),
    (IntakeError, 422),
    (MasterDiskFull, 507),
)


@dataclass(frozen=True)
class FarmConfig:
    """What the builder API needs besides the store."""

    index_url: str
    wheel_dir: Path
    lease_seconds: float = 300.0
    heartbeat_seconds: float = 30.0
    idle_retry_seconds: float = 10.0
    limits: IntakeLimits = field(default_factory=IntakeLimits)


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
    app = _new_app(engine, config, clock)

    @app.post(f"{API_PREFIX}/hello")
    def hello(message: Hello, connection: Db, name: Builder) -> HelloReply:
        register_builder(connection, name, message)
        return HelloReply(
            builder=name,
            lease_seconds=config.lease_seconds,
            heartbeat_seconds=config.heartbeat_seconds,
        )

    @app.post(f"{API_PREFIX}/claim")
    def claim(connection: Db, name: Builder) -> ClaimReply:
        claimed = claim_build(connection, name, now=clock(), lease_seconds=config.lease_seconds)
        build = claimed.build
        if build is None:
            return ClaimReply(retry_after=config.idle_retry_seconds, command=claimed.command)
        return ClaimReply(
            job=Job(
                build_id=build.build_id,
                project=build.project,
                version=build.version,
                target=build.target,
                index_url=config.index_url,
            )
        )

    @app.post(f"{API_PREFIX}/builds/{{build_id}}/heartbeat")
    def heartbeat(
        build_id: int, message: Heartbeat, connection: Db, name: Builder
    ) -> HeartbeatReply:
        lease = config.lease_seconds
        command = renew_lease(connection, build_id, name, now=clock(), lease_seconds=lease)
        return HeartbeatReply(command=command)

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
        check_upload(connection, filename, content_length, config.limits)
        announced = Upload(filename, x_wheel_sha256, content_length)
        with staged_upload(config.wheel_dir) as staged:
            with staged.open("wb") as sink:
                async for chunk in request.stream():
                    sink.write(chunk)
            wheel = accept_upload(
                connection,
                build,
                staged,
                announced,
                dependencies,
                wheel_dir=config.wheel_dir,
                limits=config.limits,
            )
        return FileAccepted(filename=wheel.filename, sha256=wheel.sha256, size=wheel.size)

    @app.post(f"{API_PREFIX}/builds/{{build_id}}/result")
    def result(
        build_id: int, message: BuildReport, connection: Db, name: Builder
    ) -> BuildReportReply:
        outcome = finish_build(connection, build_id, name, message, now=clock())
        return BuildReportReply(status=outcome)

    return app


def _new_app(engine: Engine, config: FarmConfig, clock: Callable[[], float]) -> FastAPI:
    """An app with the store, the clock and the refusal handlers, and no stale staging files."""
    sweep_stale_uploads(config.wheel_dir / ".incoming", time.time())
    app = FastAPI(title="wheelfarm builder API", version="1", docs_url=None, redoc_url=None)
    add_offline_docs(app)  # /docs without a CDN
    app.state.engine = engine
    app.state.clock = clock
    for refusal, code in REFUSAL_STATUS:
        app.add_exception_handler(refusal, _refused_with(code))
    return app


def _refused_with(code: int) -> Callable[[Request, Exception], JSONResponse]:
    """An exception handler answering a refusal with ``code`` and its message as the detail."""

    def handler(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=code)

    return handler
