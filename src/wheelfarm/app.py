"""The composition root: build the store, clients, servers and threads from :class:`Settings`.

Every command that runs something (``up``, ``serve``, ``follow``, ``sync``, ``write``,
``builder``) gets its parts from here; the command line only parses, calls these and prints.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import httpx
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError

from wheelfarm.builder.client import MasterClient
from wheelfarm.builder.emulated import prepare_root
from wheelfarm.builder.emulation import emulation_problem, require_tools
from wheelfarm.builder.isolation import choose_isolation
from wheelfarm.builder.loop import BuilderOptions, run_builder
from wheelfarm.builder.rootfs import create_rootfs, is_ready, rootfs_path
from wheelfarm.config import Settings
from wheelfarm.errors import ConfigError, WheelfarmError
from wheelfarm.farm.api import FarmConfig, create_builder_app
from wheelfarm.farm.dependencies import (
    list_distros,
    load_distro,
    set_target_distro,
    target_distros,
)
from wheelfarm.farm.distros import read_package_list, shipped_lists
from wheelfarm.farm.jobs import schedule_project
from wheelfarm.farm.registry import add_builder, add_target, list_targets, remove_builder
from wheelfarm.guards import SpaceWatch, disk_full, hold_data_dir
from wheelfarm.http import ResponseLimits, RetryPolicy, new_client
from wheelfarm.monitor.admins import TOKEN_FILE, ensure_local_admin
from wheelfarm.monitor.overview import Thresholds
from wheelfarm.monitor.routes import MonitorOptions, create_monitor_router
from wheelfarm.monitor.sampler import SamplerConfig, start_sampler
from wheelfarm.names import canonical
from wheelfarm.protocol import API_PREFIX, ClaimReply
from wheelfarm.publish.incremental import publish_dirty
from wheelfarm.publish.regenerate import write_all
from wheelfarm.publish.scheduler import start_publisher, tree_of
from wheelfarm.publish.write_report import WriteReport
from wheelfarm.stats.recorder import HitRecorder, start_recorder
from wheelfarm.store.database import StoreMissing, open_store
from wheelfarm.targets import Target, local_target
from wheelfarm.upstream.follow import Follower
from wheelfarm.upstream.pages import PageClient
from wheelfarm.upstream.prefetch import ChangelogSource
from wheelfarm.web.index_app import ACCESS_LOGGER, create_index_app
from wheelfarm.web.runner import (
    RunningServer,
    bind,
    index_server_config,
    serve_index_in_thread,
)

__all__ = [
    "IndexServer",
    "Running",
    "builder_client",
    "emulation_refusal",
    "follow_rounds",
    "open_configured_store",
    "open_follower",
    "open_index_server",
    "publish_index",
    "response_limits",
    "retry_policy",
    "schedule_synced",
    "start_up",
    "store_transaction",
]

log = logging.getLogger(__name__)

LOCAL_BUILDER = "local"
"""The name ``up`` registers its own builder under (its token is made afresh at each start)."""


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(retries=settings.retries, initial_wait=settings.retry_wait)


def response_limits(settings: Settings) -> ResponseLimits:
    """How much of an upstream answer is read, in bytes and seconds."""
    return ResponseLimits(settings.max_upstream_response_bytes, settings.upstream_deadline_seconds)


def open_configured_store(settings: Settings, *, existing: bool = False) -> Engine:
    """The configured store; ``existing`` (commands that only read) makes none where none is.

    A missing one is a :class:`ConfigError` that says where we looked and how to point
    wheelfarm at the right place, since the usual cause is a command run from another folder.
    """
    try:
        return open_store(settings.database_url, create=not existing)
    except StoreMissing as error:
        if settings.database:
            setting, value, how = "database", error.where, "--database or WHEELFARM_DATABASE"
        else:
            setting, value = "data_dir", str(settings.data_dir)
            how = "--data-dir, WHEELFARM_DATA_DIR or data_dir in wheelfarm.toml"
        raise ConfigError(
            setting,
            value,
            f"{error} (looked from {Path.cwd()}); this command does not create one: "
            f"point wheelfarm at your data with {how}",
        ) from None


@contextmanager
def store_transaction(settings: Settings, *, existing: bool = False) -> Iterator[Connection]:
    """One transaction on the configured store, which is closed afterwards.

    ``existing``: the command only reads (or changes what must already be there), so a
    missing database is an error rather than a new, empty one.
    """
    engine = open_configured_store(settings, existing=existing)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


@contextmanager
def open_follower(
    settings: Settings, *, with_changelog: bool, existing: bool = False
) -> Iterator[Follower]:
    """A follower on the configured store and upstream; closes both when done.

    ``existing`` as for :func:`store_transaction`.
    """
    engine = open_configured_store(settings, existing=existing)
    limits = response_limits(settings)
    client = new_client(settings.http_timeout, limits)
    policy = retry_policy(settings)
    try:
        pages = PageClient(settings.simple_url, settings.json_api_url, client, policy)
        changelog = (
            ChangelogSource(settings.changelog_url, settings.http_timeout, policy, limits)
            if with_changelog
            else None
        )
        yield Follower(engine, pages, changelog)
    finally:
        client.close()
        engine.dispose()


def schedule_synced(engine: Engine, names: Iterable[str], *, urgent: bool) -> tuple[int, int]:
    """Queue the builds the synced projects now need, for every configured target.

    Returns (builds queued, targets configured); with no target nothing is queued.
    """
    with engine.begin() as connection:
        configured = list_targets(connection)
        if not configured:
            return 0, 0
        now = time.time()
        pending = sum(
            schedule_project(connection, canonical(name), configured, now=now, urgent=urgent)
            for name in names
        )
    return pending, len(configured)


def follow_rounds(
    follower: Follower,
    one_round: Callable[[Follower], object],
    poll_seconds: float,
    on_error: Callable[[WheelfarmError], None],
    space: SpaceWatch | None = None,
) -> NoReturn:
    """Run ``one_round`` every ``poll_seconds``, forever; the caller stops it with an exception.

    A round that fails with a wheelfarm error (the upstream down past every retry) goes to
    ``on_error`` and is tried again after the interval; what earlier rounds applied stays.
    With ``space``, a round that finds the disk full pauses (:class:`SpaceWatch`) instead of
    ending the process, and no round runs until there is room again.
    """
    while True:
        if space is None or not space.paused or space.space_back():
            try:
                one_round(follower)
            except Exception as error:
                if space is not None and disk_full(error):
                    space.full("the database")
                elif isinstance(error, WheelfarmError):
                    on_error(error)
                else:
                    raise
        time.sleep(poll_seconds)


def publish_index(
    settings: Settings, *, everything: bool, progress: Callable[[int, int], None] | None = None
) -> WriteReport:
    """Write the index: the projects changed since the last write, or (``everything``) all."""
    engine = open_configured_store(settings, existing=True)
    tree = tree_of(settings)
    upstream, base = settings.simple_url, settings.site_url
    try:
        if everything:
            return write_all(
                engine, tree, upstream_simple_url=upstream, base_url=base, progress=progress
            )
        return publish_dirty(engine, tree, upstream_simple_url=upstream, base_url=base)
    finally:
        engine.dispose()


@dataclass
class IndexServer:
    """``wheelfarm serve``'s server, bound (a busy port fails at once) but not yet running."""

    root: Path
    url: str
    server: uvicorn.Server
    sock: socket.socket
    recorder: HitRecorder | None = None

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM, then raise that signal again for the previous handler."""
        try:
            self.server.run(sockets=[self.sock])
        finally:
            if self.recorder is not None:  # write the hits still queued
                self.recorder.stop()
                self.recorder.engine.dispose()


def open_index_server(
    settings: Settings,
    *,
    root: Path | None = None,
    host: str | None = None,
    port: int | None = None,
    access_log: bool = False,
    stats: bool = True,
) -> IndexServer:
    """The server of the published tree; what is not given comes from the settings.

    With ``stats`` its hits are recorded in the store, off the request path (docs/stats.md).
    """
    root = root if root is not None else settings.data_dir / "www"
    if not root.is_dir():
        raise ConfigError(
            "root",
            str(root),
            f"no published index there (looked from {Path.cwd()}); write one with "
            "'wheelfarm write', or point at it with --root, --data-dir, WHEELFARM_DATA_DIR "
            "or data_dir in wheelfarm.toml",
        )
    host = host if host is not None else settings.host
    port = port if port is not None else settings.port
    sock = bind(host, port)  # a busy port is a ConfigError: one line, exit status 2
    if access_log:
        _log_access_to_stderr()
    shown = f"[{host}]" if ":" in host else host
    recorder = start_recorder(open_store(settings.database_url), settings) if stats else None
    on_hit = recorder.on_hit if recorder is not None else None
    app = create_index_app(
        root, access_log=access_log, on_hit=on_hit, page_max_age=settings.page_max_age
    )
    server = uvicorn.Server(index_server_config(app))
    return IndexServer(root, f"http://{shown}:{sock.getsockname()[1]}/", server, sock, recorder)


def _log_access_to_stderr() -> None:
    """Plain 'METHOD path status' lines on standard error, one per request, for tools to read."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def builder_client(settings: Settings, master: str, token: str, http: httpx.Client) -> MasterClient:
    """A builder's client of the master's API, retrying as the settings say."""
    return MasterClient(master, token, http, retry_policy(settings))


@dataclass
class Running:
    """What :func:`start_up` started: the index and builder API, the publisher, a local builder.

    ``url`` is where the index and the builder API answer; ``target`` is the local builder's.
    The follower is not part of it: run :func:`follow_rounds` beside it, then :meth:`stop`.
    """

    engine: Engine
    url: str
    target: Target
    wheel_dir: Path
    isolation: str  # how the local builder's builds are confined, e.g. "bubblewrap"
    space: SpaceWatch
    _server: RunningServer
    _builder: threading.Thread
    _http: httpx.Client
    _stop: threading.Event
    _recorder: HitRecorder
    _lock: int
    admin_token_file: Path | None = None  # the local admin's token (written at the first start)
    emulated: list[threading.Thread] = field(default_factory=list)  # one per architecture

    def stop(self) -> None:
        """End the builders (their builds go back to the queue), then the server, then the
        store; the data directory is free for the next ``up`` at the end."""
        self._stop.set()
        for builder in (self._builder, *self.emulated):
            builder.join(timeout=60)  # it reports the cancelled build while the API serves
        self._server.stop()
        self._recorder.stop()
        self._http.close()
        self.engine.dispose()
        os.close(self._lock)


def _register_local(connection: Connection, settings: Settings) -> tuple[Target, str]:
    """Add this machine's target (and its configured distro) and a fresh local builder token."""
    target = local_target()
    if target.name not in {t.name for t in list_targets(connection)}:
        add_target(connection, target)
    distro = settings.distro_of(target.name)
    if distro is not None and target_distros(connection).get(target.name) != distro:
        set_target_distro(connection, target.name, distro)
    remove_builder(connection, LOCAL_BUILDER)
    return target, add_builder(connection, LOCAL_BUILDER, now=time.time())


def _space_watch(settings: Settings, say: Callable[[str], None]) -> SpaceWatch:
    """The full-disk pause of ``up``, probing the data directory and a SQLite file's folder."""
    folders = [settings.data_dir]
    if settings.database_url.startswith("sqlite:///"):
        folder = Path(settings.database_url.removeprefix("sqlite:///")).parent
        if folder.resolve() != settings.data_dir.resolve():
            folders.append(folder)
    return SpaceWatch(folders, say)


def _pause_with(api: FastAPI, space: SpaceWatch, retry_after: float) -> None:
    """While ``space`` is paused, claims get no job; a full database is a 503 and pauses it."""
    idle = ClaimReply(retry_after=retry_after).model_dump(mode="json")

    @api.middleware("http")
    async def no_claims_while_paused(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if space.paused and request.url.path == f"{API_PREFIX}/claim":
            return JSONResponse(idle)
        return await call_next(request)

    def full_database(_request: Request, error: Exception) -> Response:
        if not disk_full(error):
            raise error  # a 500, logged with its traceback: not ours to explain
        space.full("the database")
        return JSONResponse(
            {"detail": "the master's disk is full; try again later"},
            status_code=503,
            headers={"Retry-After": "60"},
        )

    api.add_exception_handler(DBAPIError, full_database)


def start_up(settings: Settings, say: Callable[[str], None] = log.warning) -> Running:
    """Start everything of ``wheelfarm up`` but the follower, on this machine.

    The index and the builder API share one port; the publisher writes the index now, then
    every change; the local builder builds for this machine's interpreter; and one emulated
    builder per architecture of the ``emulate`` setting builds in its root file system, made
    in the background on first use. A second ``up`` on the same data directory is refused
    (:class:`DataDirBusy`) before it touches anything. A full disk pauses the builder API's
    claims and the publisher; hand ``Running.space`` to :func:`follow_rounds` so that
    following pauses too. ``say`` gets the lines people should read (a full disk, why an
    architecture is not built, the progress of a root file system).
    """
    isolation = choose_isolation()
    if not isolation.confined and not settings.allow_unsandboxed_builds:
        raise ConfigError(
            "allow_unsandboxed_builds",
            False,
            "bubblewrap is not installed or cannot make namespaces here, so builds would run "
            "unconfined and could read the master's data; install bubblewrap, or set "
            "WHEELFARM_ALLOW_UNSANDBOXED_BUILDS=1 to build anyway",
        )
    space = _space_watch(settings, say)

    def publisher_error(error: Exception) -> bool:
        if not disk_full(error):
            return False
        space.full("the published tree")
        return True

    lock = hold_data_dir(settings.data_dir)
    try:
        engine = open_store(settings.database_url)
    except BaseException:
        os.close(lock)
        raise
    try:
        with engine.begin() as connection:
            target, token = _register_local(connection, settings)
        farm = FarmConfig(
            index_url=settings.simple_url,
            wheel_dir=settings.wheel_dir,
            staging_dir=settings.staging_dir,
            max_wheels_per_job=settings.max_wheels_per_job,
        )
        api = create_builder_app(engine, farm)
        token_file = _attach_monitor(engine, settings, api, farm)
        _pause_with(api, space, farm.idle_retry_seconds)
        settings.www_dir.mkdir(parents=True, exist_ok=True)
        recorder = start_recorder(engine, settings)
        server = serve_index_in_thread(
            settings.www_dir,
            settings.host,
            settings.port,
            api=api,
            on_hit=recorder.on_hit,
            page_max_age=settings.page_max_age,
        )
    except BaseException:
        engine.dispose()
        os.close(lock)
        raise
    stop = threading.Event()
    http = httpx.Client(timeout=settings.http_timeout)
    options = BuilderOptions(
        workdir=settings.data_dir / "build",
        label=LOCAL_BUILDER,
        pip_options=settings.pip_options,
        isolation=isolation,
        allow_unsandboxed=settings.allow_unsandboxed_builds,
        secrets=_secrets(settings),
    )
    builder = threading.Thread(
        target=run_builder,
        args=(builder_client(settings, server.url, token, http), options, stop),
        name="local-builder",
        daemon=True,
    )
    builder.start()
    start_publisher(engine, settings, stop, on_error=publisher_error)
    start_sampler(engine, _sampler_config(settings), stop)
    running = Running(
        engine,
        server.url,
        target,
        farm.wheel_dir,
        isolation.name,
        space,
        server,
        builder,
        http,
        stop,
        recorder,
        lock,
        token_file,
    )

    for arch in settings.emulate:
        refusal = emulation_refusal(settings, arch)
        if refusal is not None:
            say(f"not building for {arch}: {refusal}")
            continue
        emulated = threading.Thread(
            target=_run_emulated,
            args=(settings, engine, arch, builder_client_factory(settings, server.url, http)),
            kwargs={"stop": stop, "say": say},
            name=f"emulated-builder-{arch}",
            daemon=True,
        )
        emulated.start()
        running.emulated.append(emulated)
    return running


def _sampler_config(settings: Settings) -> SamplerConfig:
    return SamplerConfig(
        data_dir=settings.data_dir,
        tree_dir=settings.www_dir,
        wheel_dir=settings.wheel_dir,
        interval=settings.monitor_seconds or 60.0,
        min_free_disk=settings.min_free_disk,
    )


def _attach_monitor(
    engine: Engine, settings: Settings, api: FastAPI, farm: FarmConfig
) -> Path | None:
    """Mount the monitor's routes on the builder API; the local admin's token on a first start."""
    with engine.begin() as connection:
        token_file = ensure_local_admin(connection, settings.data_dir, now=time.time())
    options = MonitorOptions(
        thresholds=Thresholds(silent_after=3 * farm.heartbeat_seconds),
        public_metrics=settings.public_metrics,
        tree_dir=settings.www_dir,
        follow_stale_after=3 * settings.poll_seconds + 300,
    )
    api.include_router(create_monitor_router(engine, options))
    existing = settings.data_dir / TOKEN_FILE
    return token_file or (existing if existing.exists() else None)


def _secrets(settings: Settings) -> tuple[str, ...]:
    """What the local builder must keep out of build logs besides its token: the database's
    password, if its URL has one."""
    password = make_url(settings.database_url).password if settings.database else None
    return (str(password),) if password else ()


# --- emulated builders ------------------------------------------------------------------------

_BUILD_TOOLS = ("chroot", "unshare", "setpriv", "mount")
_ROOTFS_TOOLS = ("mmdebstrap", "arch-test", "update-binfmts")


def emulation_refusal(settings: Settings, arch: str) -> str | None:
    """Why ``up`` cannot build for ``arch`` here, in one line that says how to enable it; None
    when it can (the root file system may still have to be made)."""
    problem = emulation_problem(arch)
    if problem is not None:
        return f"{problem}; building for this machine only"
    if os.geteuid() != 0:
        return (
            "building in a root file system needs root (chroot, mounts): run wheelfarm up as "
            "root, or set emulate = []; building for this machine only"
        )
    ready = is_ready(rootfs_path(settings.data_dir, arch))
    try:
        require_tools(*_BUILD_TOOLS, *(() if ready else _ROOTFS_TOOLS))
    except WheelfarmError as error:
        return f"{error}; building for this machine only"
    return None


def builder_client_factory(
    settings: Settings, master: str, http: httpx.Client
) -> Callable[[str], MasterClient]:
    """Clients of the master's API for builders whose token is made later."""
    return lambda token: builder_client(settings, master, token, http)


def _run_emulated(
    settings: Settings,
    engine: Engine,
    arch: str,
    client_for: Callable[[str], MasterClient],
    *,
    stop: threading.Event,
    say: Callable[[str], None],
) -> None:
    """One emulated builder's life: make its root if needed, register its target, build.

    Runs in its own thread, so the index and the native builder work meanwhile; a failure
    ends this builder only, with one line saying why.
    """
    try:
        root = rootfs_path(settings.data_dir, arch)
        if not is_ready(root):
            say(
                f"{arch}: making the root file system {root} (first run only: a few minutes "
                "and about 500 MB); the index and the native builder work meanwhile"
            )
            started = time.monotonic()
            create_rootfs(settings.data_dir, arch, progress=lambda line: say(f"{arch}: {line}"))
            say(f"{arch}: root file system ready in {time.monotonic() - started:.0f} s")
        prepared = prepare_root(root)
        marker_distro = root.name.rsplit("-", 1)[0]  # <distro>-<arch>, e.g. bookworm-arm64
        with engine.begin() as connection:
            name = _register_emulated(connection, settings, prepared.target, marker_distro)
            token = add_builder(connection, name, now=time.time())
        pending, _ = schedule_synced(engine, settings.projects, urgent=False)
        say(f"{arch}: building for {prepared.target.name} ({pending} builds queued)")
        options = BuilderOptions(
            workdir=settings.data_dir / f"build-{arch}",
            label=name,
            pip_options=settings.pip_options,
            rootfs=root,
        )
        run_builder(client_for(token), options, stop)
    except WheelfarmError as error:
        say(f"not building for {arch}: {error}")


def _register_emulated(
    connection: Connection, settings: Settings, target: Target, root_distro: str
) -> str:
    """Add an emulated builder's target with its distro (the setting, else the root's Debian
    release, whose shipped base list is loaded if it is not); returns the builder's name."""
    if target.name not in {t.name for t in list_targets(connection)}:
        add_target(connection, target)
    distro = settings.distro_of(target.name) or f"debian-{root_distro}-base"
    loaded = {d.name for d in list_distros(connection)}
    if distro not in loaded and distro in shipped_lists():
        _name, packages, source = read_package_list(distro)
        load_distro(connection, distro, packages, source)
    if target_distros(connection).get(target.name) != distro:
        set_target_distro(connection, target.name, distro)
    name = f"{LOCAL_BUILDER}-{target.platform.removeprefix('linux_')}"
    remove_builder(connection, name)
    return name
