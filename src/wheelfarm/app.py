"""The composition root: build the store, clients, servers and threads from :class:`Settings`.

Every command that runs something (``up``, ``serve``, ``follow``, ``sync``, ``write``,
``builder``) gets its parts from here; the command line only parses, calls these and prints.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import httpx
import uvicorn
from sqlalchemy import Connection, Engine

from wheelfarm.builder.client import MasterClient
from wheelfarm.builder.loop import BuilderOptions, run_builder
from wheelfarm.config import Settings
from wheelfarm.errors import WheelfarmError
from wheelfarm.farm.api import FarmConfig, create_builder_app
from wheelfarm.farm.dependencies import set_target_distro, target_distros
from wheelfarm.farm.jobs import schedule_project
from wheelfarm.farm.registry import add_builder, add_target, list_targets, remove_builder
from wheelfarm.http import RetryPolicy, new_client
from wheelfarm.names import canonical
from wheelfarm.publish.incremental import publish_dirty
from wheelfarm.publish.regenerate import write_all
from wheelfarm.publish.scheduler import start_publisher, tree_of
from wheelfarm.publish.write_report import WriteReport
from wheelfarm.store.database import open_store
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
    "follow_rounds",
    "open_follower",
    "open_index_server",
    "publish_index",
    "retry_policy",
    "schedule_synced",
    "start_up",
    "store_transaction",
]

LOCAL_BUILDER = "local"
"""The name ``up`` registers its own builder under (its token is made afresh at each start)."""


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(retries=settings.retries, initial_wait=settings.retry_wait)


@contextmanager
def store_transaction(settings: Settings) -> Iterator[Connection]:
    """One transaction on the configured store, which is closed afterwards."""
    engine = open_store(settings.database_url)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


@contextmanager
def open_follower(settings: Settings, *, with_changelog: bool) -> Iterator[Follower]:
    """A follower on the configured store and upstream; closes both when done."""
    engine = open_store(settings.database_url)
    client = new_client(settings.http_timeout)
    policy = retry_policy(settings)
    try:
        pages = PageClient(settings.simple_url, settings.json_api_url, client, policy)
        changelog = (
            ChangelogSource(settings.changelog_url, settings.http_timeout, policy)
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
) -> NoReturn:
    """Run ``one_round`` every ``poll_seconds``, forever; the caller stops it with an exception.

    A round that fails with a wheelfarm error (the upstream down past every retry) goes to
    ``on_error`` and is tried again after the interval; what earlier rounds applied stays.
    """
    while True:
        try:
            one_round(follower)
        except WheelfarmError as error:
            on_error(error)
        time.sleep(poll_seconds)


def publish_index(
    settings: Settings, *, everything: bool, progress: Callable[[int, int], None] | None = None
) -> WriteReport:
    """Write the index: the projects changed since the last write, or (``everything``) all."""
    engine = open_store(settings.database_url)
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

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM, then raise that signal again for the previous handler."""
        self.server.run(sockets=[self.sock])


def open_index_server(
    settings: Settings,
    *,
    root: Path | None = None,
    host: str | None = None,
    port: int | None = None,
    access_log: bool = False,
) -> IndexServer:
    """The server of the published tree; what is not given comes from the settings."""
    root = root if root is not None else settings.data_dir / "www"
    host = host if host is not None else settings.host
    port = port if port is not None else settings.port
    sock = bind(host, port)  # a busy port is a ConfigError: one line, exit status 2
    if access_log:
        _log_access_to_stderr()
    shown = f"[{host}]" if ":" in host else host
    server = uvicorn.Server(
        index_server_config(
            create_index_app(root, access_log=access_log, page_max_age=settings.page_max_age)
        )
    )
    return IndexServer(root, f"http://{shown}:{sock.getsockname()[1]}/", server, sock)


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
    _server: RunningServer
    _builder: threading.Thread
    _http: httpx.Client
    _stop: threading.Event

    def stop(self) -> None:
        """End the builder (its build goes back to the queue), then the server, then the store."""
        self._stop.set()
        self._builder.join(timeout=60)  # it reports the cancelled build while the API still serves
        self._server.stop()
        self._http.close()
        self.engine.dispose()


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


def start_up(settings: Settings) -> Running:
    """Start everything of ``wheelfarm up`` but the follower, on this machine.

    The index and the builder API share one port; the publisher writes the index now, then
    every change; the local builder builds for this machine's interpreter.
    """
    engine = open_store(settings.database_url)
    try:
        with engine.begin() as connection:
            target, token = _register_local(connection, settings)
        farm = FarmConfig(index_url=settings.simple_url, wheel_dir=settings.wheel_dir)
        api = create_builder_app(engine, farm)
        settings.www_dir.mkdir(parents=True, exist_ok=True)
        server = serve_index_in_thread(
            settings.www_dir,
            settings.host,
            settings.port,
            api=api,
            page_max_age=settings.page_max_age,
        )
    except BaseException:
        engine.dispose()
        raise
    stop = threading.Event()
    http = httpx.Client(timeout=settings.http_timeout)
    options = BuilderOptions(
        workdir=settings.data_dir / "build", label=LOCAL_BUILDER, pip_options=settings.pip_options
    )
    builder = threading.Thread(
        target=run_builder,
        args=(builder_client(settings, server.url, token, http), options, stop),
        name="local-builder",
        daemon=True,
    )
    builder.start()
    start_publisher(engine, settings, stop)
    return Running(engine, server.url, target, farm.wheel_dir, server, builder, http, stop)
