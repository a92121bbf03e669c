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
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import httpx
import uvicorn
from sqlalchemy import Connection, Engine

from wheelfarm.builder.client import MasterClient
from wheelfarm.builder.emulated import prepare_root
from wheelfarm.builder.emulation import emulation_problem, require_tools
from wheelfarm.builder.loop import BuilderOptions, run_builder
from wheelfarm.builder.rootfs import create_rootfs, is_ready, rootfs_path
from wheelfarm.config import Settings
from wheelfarm.errors import WheelfarmError
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
    "emulation_refusal",
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
    server = uvicorn.Server(index_server_config(create_index_app(root, access_log=access_log)))
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
    emulated: list[threading.Thread] = field(default_factory=list)  # one per architecture

    def stop(self) -> None:
        """End the builders (their builds go back to the queue), then the server, the store."""
        self._stop.set()
        for builder in (self._builder, *self.emulated):
            builder.join(timeout=60)  # it reports the cancelled build while the API serves
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


def start_up(settings: Settings, say: Callable[[str], None] = print) -> Running:
    """Start everything of ``wheelfarm up`` but the follower, on this machine.

    The index and the builder API share one port; the publisher writes the index now, then
    every change; the local builder builds for this machine's interpreter; and one emulated
    builder per architecture of the ``emulate`` setting builds in its root file system, made
    in the background on first use. ``say`` gets the lines people should read (why an
    architecture is not built, the progress of a root file system).
    """
    engine = open_store(settings.database_url)
    try:
        with engine.begin() as connection:
            target, token = _register_local(connection, settings)
        farm = FarmConfig(index_url=settings.simple_url, wheel_dir=settings.wheel_dir)
        api = create_builder_app(engine, farm)
        settings.www_dir.mkdir(parents=True, exist_ok=True)
        server = serve_index_in_thread(settings.www_dir, settings.host, settings.port, api=api)
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
    running = Running(engine, server.url, target, farm.wheel_dir, server, builder, http, stop)
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
