"""The builder API: builders pull work over HTTP with their token; everything they send is checked.

Served by the master under :data:`~wheelfarm.protocol.API_PREFIX` (OpenAPI at ``/docs``).
A claimed job has a lease that heartbeats renew; a silent builder's job returns to the queue.
Uploads stream to a staging file (outside the published tree), are validated by
:mod:`wheelfarm.farm.intake`, then stored, so no partial file is ever published. No database
transaction is open while a body streams: an upload checks the build in one short transaction,
streams, then records the wheel in another, so a slow upload holds no lock others wait for.
Every number in a path or a message has a range (:mod:`wheelfarm.protocol`); what is out of
it is a 422 naming the field, whose echo of the input is cut short. Failed token attempts are
logged with the client's address and slowed per address (:mod:`wheelfarm.farm.throttle`).
Tokens are checked from memory (:mod:`wheelfarm.farm.tokens`), and what every request leaves
behind (last seen, lease renewals, readings) is written in batches
(:mod:`wheelfarm.farm.presence`); heartbeats are answered from memory
(:mod:`wheelfarm.farm.lease_book`), on the event loop: no thread, no database.

The routes authenticate, parse, call a service (:mod:`wheelfarm.farm.builds`,
:mod:`wheelfarm.farm.uploads`) and reply; a refusal the service raises
(:mod:`wheelfarm.farm.refusals`) becomes its HTTP code here, in :data:`REFUSAL_STATUS`.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request, status
from fastapi import Path as PathParameter
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy import Connection, Engine
from starlette.concurrency import run_in_threadpool

from wheelfarm.errors import WheelfarmError
from wheelfarm.farm.api_docs import add_offline_docs
from wheelfarm.farm.builds import (
    claim_build,
    finish_build,
    own_build,
    register_builder,
)
from wheelfarm.farm.heartbeats import heartbeat as renew_and_note
from wheelfarm.farm.heartbeats import heartbeat_from_book
from wheelfarm.farm.intake import AcceptedWheel, IntakeError, IntakeLimits
from wheelfarm.farm.lease_book import LeaseBook, OpenLease
from wheelfarm.farm.presence import Presence
from wheelfarm.farm.refusals import BuildConflict, MasterDiskFull, NotYourBuild, WheelTooLarge
from wheelfarm.farm.throttle import TokenThrottle
from wheelfarm.farm.tokens import TokenCache
from wheelfarm.farm.uploads import (
    Upload,
    accept_upload,
    check_upload,
    staged_upload,
    sweep_stale_uploads,
)
from wheelfarm.protocol import (
    API_PREFIX,
    MAX_BUILD_ID,
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

__all__ = ["ECHO_CHARS", "REFUSAL_STATUS", "FarmConfig", "create_builder_app"]

#: How much of a refused input a 422 echoes back: enough to recognise it, never megabytes.
ECHO_CHARS = 100

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
    """What the builder API needs besides the store.

    ``staging_dir`` holds uploads in progress: outside the published tree (a half-uploaded file
    must never be served). ``None`` means ``<wheel_dir>.staging``, beside the tree's wheels.
    ``max_wheels_per_job`` bounds what one build may publish.
    """

    index_url: str
    wheel_dir: Path
    lease_seconds: float = 300.0
    heartbeat_seconds: float = 30.0
    idle_retry_seconds: float = 10.0
    limits: IntakeLimits = field(default_factory=IntakeLimits)
    staging_dir: Path | None = None
    max_wheels_per_job: int = 8

    @property
    def staging(self) -> Path:
        """Where uploads stream to before intake."""
        if self.staging_dir is not None:
            return self.staging_dir
        return self.wheel_dir.with_name(f"{self.wheel_dir.name}.staging")


def _transaction(request: Request) -> Iterator[Connection]:
    """One transaction per request: committed when the handler returns, else rolled back."""
    engine: Engine = request.app.state.engine
    with engine.begin() as connection:
        yield connection


# Committed before the response is sent (scope="function"): a builder told "ok" can rely on it.
Db = Annotated[Connection, Depends(_transaction, scope="function")]


async def _builder_name(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> str:
    """The builder the bearer token belongs to; 401 for anything else, 429 while locked out.

    Checked from memory (:class:`~wheelfarm.farm.tokens.TokenCache`) on the event loop, or in
    a worker thread when the store must be asked, outside the request's transaction; the
    builder is noted as seen, for the batched writer. Async, because a hop to a worker thread
    and back costs more than the check: with one hop fewer per heartbeat the app's CPU per
    heartbeat fell by half (2.1 to 1.1 ms, under cProfile, 200 builders).
    """
    throttle: TokenThrottle = request.app.state.throttle
    address = request.client.host if request.client else "unknown"
    wait = throttle.locked_for(address, time.monotonic())
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many refused builder tokens from this address; try again later",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    scheme, _, token = (authorization or "").partition(" ")
    name = None
    if scheme == "Bearer" and token:
        tokens: TokenCache = request.app.state.tokens
        name = tokens.known(token)
        if name is None:
            name = await run_in_threadpool(tokens.builder, token)
    if name is None:
        throttle.failed(address, time.monotonic())
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "unknown or revoked builder token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    throttle.succeeded(address)
    request.app.state.presence.seen(name, request.app.state.clock())
    return name


Builder = Annotated[str, Depends(_builder_name)]
#: A build id in a path: a whole number the store can hold (else 422, never a 500).
BuildId = Annotated[int, PathParameter(ge=1, le=MAX_BUILD_ID)]


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
    """The builder API as an ASGI app.

    Long: one route per exchange of the protocol, side by side; each is a few lines.
    """
    app = _new_app(engine, config, clock)
    presence: Presence = app.state.presence
    book: LeaseBook = app.state.book

    @app.post(f"{API_PREFIX}/hello")
    def hello(message: Hello, name: Builder, connection: Db) -> HelloReply:
        register_builder(connection, name, message)
        return HelloReply(
            builder=name,
            lease_seconds=config.lease_seconds,
            heartbeat_seconds=config.heartbeat_seconds,
        )

    @app.post(f"{API_PREFIX}/claim")
    def claim(name: Builder, connection: Db, message: Heartbeat | None = None) -> ClaimReply:
        now = clock()
        if message is not None:  # readings between builds (older builders send none)
            presence.readings(name, message.health, now)
        claimed = claim_build(
            connection,
            name,
            now=now,
            lease_seconds=config.lease_seconds,
            wheel_dir=config.wheel_dir,
        )
        build = claimed.build
        if build is None:
            return ClaimReply(retry_after=config.idle_retry_seconds, command=claimed.command)
        expires = now + config.lease_seconds  # the lease claim_build stored
        lease = OpenLease(name, build.project, build.version, build.target, expires, "continue")
        book.opened(build.build_id, lease)
        return ClaimReply(
            job=Job(
                build_id=build.build_id,
                project=build.project,
                version=build.version,
                target=build.target,
                index_url=config.index_url,
                build_number=build.build_number,
            )
        )

    @app.post(f"{API_PREFIX}/builds/{{build_id}}/heartbeat")
    async def heartbeat(build_id: BuildId, message: Heartbeat, name: Builder) -> HeartbeatReply:
        # no transaction of its own: answered from memory (else one read), notes for the writer
        now = clock()
        known = heartbeat_from_book(
            book, presence, build_id, name, message.health, now, config.lease_seconds
        )
        if known is not None:
            return HeartbeatReply(command=known)
        command = await run_in_threadpool(
            renew_and_note,
            engine,
            presence,
            book,
            build_id,
            name,
            message.health,
            now,
            config.lease_seconds,
        )
        return HeartbeatReply(command=command)

    @app.put(f"{API_PREFIX}/builds/{{build_id}}/files/{{filename}}", status_code=201)
    async def upload(
        build_id: BuildId,
        filename: Annotated[str, PathParameter(max_length=512)],
        request: Request,
        name: Builder,
        x_wheel_sha256: Annotated[str, Header(pattern=r"^[0-9a-fA-F]{64}$")],
        content_length: Annotated[int, Header(ge=1, le=1 << 60)],
        x_wheel_dependencies: Annotated[
            str | None, Header(max_length=MAX_DEPENDENCIES_HEADER)
        ] = None,
    ) -> FileAccepted:
        dependencies = _dependencies(x_wheel_dependencies)
        announced = Upload(filename, x_wheel_sha256, content_length)
        # No transaction stays open while the body streams: check, stream, then record.
        await run_in_threadpool(_check, engine, build_id, name, announced, config)
        with staged_upload(config.staging) as staged:
            with staged.open("wb") as sink:
                async for chunk in request.stream():
                    sink.write(chunk)
            wheel = await run_in_threadpool(
                _accept, engine, build_id, name, staged, announced, dependencies, config
            )
        return FileAccepted(filename=wheel.filename, sha256=wheel.sha256, size=wheel.size)

    @app.post(f"{API_PREFIX}/builds/{{build_id}}/result")
    def result(
        build_id: BuildId, message: BuildReport, name: Builder, connection: Db
    ) -> BuildReportReply:
        outcome = finish_build(
            connection, build_id, name, message, now=clock(), wheel_dir=config.wheel_dir
        )
        book.closed(build_id)
        return BuildReportReply(status=outcome)

    return app


def _check(engine: Engine, build_id: int, builder: str, upload: Upload, config: FarmConfig) -> None:
    """Before a byte is read: the build is the builder's, the wheel is welcome (short txn)."""
    with engine.begin() as connection:
        build = own_build(connection, build_id, builder)
        check_upload(connection, build, upload, config.limits, config.max_wheels_per_job)


def _accept(
    engine: Engine,
    build_id: int,
    builder: str,
    staged: Path,
    upload: Upload,
    dependencies: WheelDependencies | None,
    config: FarmConfig,
) -> AcceptedWheel:
    """After the body: check again (the build may have ended meanwhile), validate, record."""
    with engine.begin() as connection:
        build = own_build(connection, build_id, builder)
        check_upload(connection, build, upload, config.limits, config.max_wheels_per_job)
        return accept_upload(
            connection,
            build,
            staged,
            upload,
            dependencies,
            wheel_dir=config.wheel_dir,
            limits=config.limits,
        )


def _new_app(engine: Engine, config: FarmConfig, clock: Callable[[], float]) -> FastAPI:
    """An app with the store, the clock and the refusal handlers, and no stale staging files."""
    sweep_stale_uploads(config.staging, time.time())
    book = LeaseBook(engine)
    tokens = TokenCache(engine)
    presence = Presence(engine, after_pass=(tokens.read, book.read))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(presence.flush)  # what the last second's requests noted

    app = FastAPI(
        title="wheelfarm builder API",
        version="1",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    add_offline_docs(app)  # /docs without a CDN
    app.state.engine = engine
    app.state.clock = clock
    app.state.throttle = TokenThrottle()
    app.state.tokens = tokens
    app.state.presence = presence
    app.state.book = book
    for refusal, code in REFUSAL_STATUS:
        app.add_exception_handler(refusal, _refused_with(code))
    app.add_exception_handler(RequestValidationError, _invalid_request)
    return app


def _invalid_request(request: Request, error: Exception) -> JSONResponse:
    """422 naming each field that is wrong, echoing at most :data:`ECHO_CHARS` of its input."""
    errors = error.errors() if isinstance(error, RequestValidationError) else []
    detail = [
        {
            "type": e.get("type"),
            "loc": list(e.get("loc", ())),
            "msg": _cut(e.get("msg", "")),
            "input": _cut(e.get("input")),
        }
        for e in errors[:20]
    ]
    return JSONResponse({"detail": detail}, status_code=422)


def _cut(value: Any) -> Any:
    """A refused input as echoed: short strings and plain numbers as they are, else a prefix."""
    if value is None or isinstance(value, bool) or (isinstance(value, int) and abs(value) < 2**63):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= ECHO_CHARS else f"{text[:ECHO_CHARS]}… ({len(text)} characters)"


def _refused_with(code: int) -> Callable[[Request, Exception], JSONResponse]:
    """An exception handler answering a refusal with ``code`` and its message as the detail."""

    def handler(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=code)

    return handler
