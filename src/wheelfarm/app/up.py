"""``wheelfarm up``: the master, the publisher, the local and emulated builders, in one process."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import Connection, Engine, make_url

from wheelfarm.app.collector import settle_collector
from wheelfarm.app.disk import pause_with, space_watch
from wheelfarm.app.emulated import builder_client_factory, emulation_refusal, run_emulated
from wheelfarm.app.monitoring import attach_monitor, sampler_config
from wheelfarm.app.parts import LOCAL_BUILDER, builder_client
from wheelfarm.app.progress import start_progress
from wheelfarm.builder.isolation import Isolation, choose_isolation
from wheelfarm.builder.loop import BuilderOptions, run_builder
from wheelfarm.config import Settings
from wheelfarm.errors import ConfigError
from wheelfarm.farm.api import FarmConfig, create_builder_app
from wheelfarm.farm.dependencies import (
    set_target_distro,
    target_distros,
)
from wheelfarm.farm.jobs import projects_with_sources, schedule_target
from wheelfarm.farm.listings import builds_under_way
from wheelfarm.farm.registry import add_builder, add_target, list_targets, remove_builder
from wheelfarm.guards import SpaceWatch, disk_full, hold_data_dir
from wheelfarm.monitor.sampler import start_sampler
from wheelfarm.publish.scheduler import start_publisher
from wheelfarm.stats.recorder import HitRecorder, start_recorder
from wheelfarm.store.database import open_store
from wheelfarm.targets import Target, local_target
from wheelfarm.web.runner import (
    RunningServer,
    serve_index_in_thread,
)

__all__ = ["Running", "start_up"]

log = logging.getLogger(__name__)


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
    _background: list[threading.Thread]  # the publisher, the sampler, the progress lines
    admin_token_file: Path | None = None  # the local admin's token (written at the first start)
    emulated: list[threading.Thread] = field(default_factory=list)  # one per architecture

    def builds_under_way(self) -> int:
        """Builds this process's builders (local and emulated) are running now."""
        with self.engine.connect() as connection:
            return builds_under_way(connection, LOCAL_BUILDER)

    def stop(self) -> None:
        """End the builders (their builds go back to the queue), the other threads, then the
        server, then the store; the data directory is free for the next ``up`` at the end.

        Every thread is waited for: one still drawing plots or writing to the store while the
        interpreter shuts down can crash it (CI saw ``up`` end by SIGSEGV after its farewell).
        """
        self._stop.set()
        for builder in (self._builder, *self.emulated):
            builder.join(timeout=60)  # it reports the cancelled build while the API serves
        for thread in self._background:
            thread.join(timeout=60)
            if thread.is_alive():
                log.warning("%s did not end within a minute; stopping without it", thread.name)
        self._server.stop()
        self._recorder.stop()
        self._http.close()
        self.engine.dispose()
        os.close(self._lock)


def _register_local(connection: Connection, settings: Settings) -> tuple[Target, str]:
    """Add this machine's target (and its configured distro) and a fresh local builder token.

    A target added here gets the existing releases queued, as ``wheelfarm targets add`` does.
    """
    target = local_target()
    if target.name not in {t.name for t in list_targets(connection)}:
        add_target(connection, target)
        schedule_target(connection, target, projects_with_sources(connection), now=time.time())
    distro = settings.distro_of(target.name)
    if distro is not None and target_distros(connection).get(target.name) != distro:
        set_target_distro(connection, target.name, distro)
    remove_builder(connection, LOCAL_BUILDER)
    return target, add_builder(connection, LOCAL_BUILDER, now=time.time())


def start_up(settings: Settings, say: Callable[[str], None] = log.warning) -> Running:
    """Start everything of ``wheelfarm up`` but the follower, on this machine.

    The index and the builder API share one port; the publisher writes the index now, then
    every change; the local builder builds for this machine's interpreter; and one emulated
    builder per architecture of the ``emulate`` setting builds in its root file system, made
    in the background on first use. A second ``up`` on the same data directory is refused
    (:class:`DataDirBusy`) before it touches anything. A full disk pauses the builder API's
    claims and the publisher; hand ``Running.space`` to :func:`follow_rounds` so that
    following pauses too. ``say`` gets the lines people should read (a full disk, why an
    architecture is not built, the progress of a root file system, of the build queue).
    """
    isolation = _isolation(settings)
    space = space_watch(settings, say)

    def publisher_error(error: Exception) -> bool:
        if not disk_full(error):
            return False
        space.full("the published tree")
        return True

    lock = hold_data_dir(settings.data_dir)
    try:
        master = _start_master(settings, space)
    except BaseException:
        os.close(lock)
        raise
    engine, server = master.engine, master.server
    stop = threading.Event()
    http = httpx.Client(timeout=settings.http_timeout)
    builder = _start_local_builder(settings, isolation, server.url, master.token, http, stop)
    background = [
        start_publisher(engine, settings, stop, on_error=publisher_error),
        start_sampler(engine, sampler_config(settings), stop),
        start_progress(engine, stop, say),
    ]
    running = Running(
        engine,
        server.url,
        master.target,
        settings.wheel_dir,
        isolation.name,
        space,
        server,
        builder,
        http,
        stop,
        master.recorder,
        lock,
        background,
        master.token_file,
    )
    running.emulated.extend(_start_emulated(settings, engine, server.url, http, stop, say))
    settle_collector()  # what was made at start is frozen; young collections less often
    return running


def _isolation(settings: Settings) -> Isolation:
    """How the local builder confines its builds; none only if the operator allowed it."""
    isolation = choose_isolation()
    if not isolation.confined and not settings.allow_unsandboxed_builds:
        raise ConfigError(
            "allow_unsandboxed_builds",
            False,
            "bubblewrap is not installed or cannot make namespaces here, so builds would run "
            "unconfined and could read the master's data; install bubblewrap, or set "
            "WHEELFARM_ALLOW_UNSANDBOXED_BUILDS=1 to build anyway",
        )
    return isolation


@dataclass
class _Master:
    """The master's half of ``up``: the store, the local target and token, the server."""

    engine: Engine
    target: Target
    token: str
    token_file: Path | None
    recorder: HitRecorder
    server: RunningServer


def _start_master(settings: Settings, space: SpaceWatch) -> _Master:
    """Open the store, register the local builder, serve the builder API and the index."""
    engine = open_store(settings.database_url)
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
        token_file = attach_monitor(engine, settings, api, farm)
        pause_with(api, space, farm.idle_retry_seconds)
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
        raise
    return _Master(engine, target, token, token_file, recorder, server)


def _start_local_builder(
    settings: Settings,
    isolation: Isolation,
    master: str,
    token: str,
    http: httpx.Client,
    stop: threading.Event,
) -> threading.Thread:
    """The builder for this machine's interpreter, in a thread of its own."""
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
        args=(builder_client(settings, master, token, http), options, stop),
        name="local-builder",
        daemon=True,
    )
    builder.start()
    return builder


def _start_emulated(
    settings: Settings,
    engine: Engine,
    master: str,
    http: httpx.Client,
    stop: threading.Event,
    say: Callable[[str], None],
) -> list[threading.Thread]:
    """One emulated builder per architecture this machine can emulate; one line for each not."""
    started = []
    for arch in settings.emulate:
        refusal = emulation_refusal(settings, arch)
        if refusal is not None:
            say(f"not building for {arch}: {refusal}")
            continue
        emulated = threading.Thread(
            target=run_emulated,
            args=(settings, engine, arch, builder_client_factory(settings, master, http)),
            kwargs={"stop": stop, "say": say},
            name=f"emulated-builder-{arch}",
            daemon=True,
        )
        emulated.start()
        started.append(emulated)
    return started


def _secrets(settings: Settings) -> tuple[str, ...]:
    """What the local builder must keep out of build logs besides its token: the database's
    password, if its URL has one."""
    password = make_url(settings.database_url).password if settings.database else None
    return (str(password),) if password else ()
