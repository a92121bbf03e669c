"""``up``'s emulated builders: one per architecture of the ``emulate`` setting, each in its
root file system, made in the background on first use."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import httpx
from sqlalchemy import Connection, Engine

from wheelfarm.app.parts import LOCAL_BUILDER, builder_client, schedule_synced
from wheelfarm.builder.client import MasterClient
from wheelfarm.builder.emulated import prepare_root
from wheelfarm.builder.emulation import RootfsError, emulation_problem, require_tools
from wheelfarm.builder.loop import BuilderOptions, run_builder
from wheelfarm.builder.rootfs import create_rootfs, is_ready, rootfs_path
from wheelfarm.config import Settings
from wheelfarm.errors import WheelfarmError
from wheelfarm.farm.dependencies import (
    list_distros,
    load_distro,
    set_target_distro,
    target_distros,
)
from wheelfarm.farm.distros import read_package_list, shipped_lists
from wheelfarm.farm.jobs import projects_with_sources, schedule_target
from wheelfarm.farm.registry import add_builder, add_target, list_targets, remove_builder
from wheelfarm.targets import Target
from wheelfarm.words import plural

__all__ = ["builder_client_factory", "emulation_refusal", "run_emulated"]

log = logging.getLogger(__name__)

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


def run_emulated(
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

    def progress(line: str) -> None:
        # Each line of the root's making is a point to give up at when up stops: the error
        # unwinds through create_rootfs, which stops mmdebstrap and removes the half-made root.
        if stop.is_set():
            raise RootfsError(
                "up stopped while the root was being made; the half-made root was removed"
            )
        say(f"{arch}: {line}")

    try:
        root = rootfs_path(settings.data_dir, arch)
        if not is_ready(root):
            say(
                f"{arch}: making the root file system {root} (first run only: a few minutes "
                "and about 500 MB); the index and the native builder work meanwhile"
            )
            started = time.monotonic()
            create_rootfs(settings.data_dir, arch, progress=progress)
            say(f"{arch}: root file system ready in {time.monotonic() - started:.0f} s")
        else:  # installs what this version adds to a root an older one made (seconds)
            create_rootfs(settings.data_dir, arch, progress=progress)
        if stop.is_set():
            return
        prepared = prepare_root(root)
        marker_distro = root.name.rsplit("-", 1)[0]  # <distro>-<arch>, e.g. bookworm-arm64
        with engine.begin() as connection:
            name, backlog = _register_emulated(connection, settings, prepared.target, marker_distro)
            token = add_builder(connection, name, now=time.time())
        pending, _ = schedule_synced(engine, settings.projects, urgent=False)
        queued = plural(backlog + pending, "build")
        say(f"{arch}: building for {prepared.target.name} ({queued} queued)")
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
) -> tuple[str, int]:
    """Add an emulated builder's target with its distro (the setting, else the root's Debian
    release, whose shipped base list is loaded if it is not); returns the builder's name and
    how many builds of existing releases were queued for a target new here."""
    backlog = 0
    if target.name not in {t.name for t in list_targets(connection)}:
        add_target(connection, target)  # and its backlog, as `wheelfarm targets add` does
        names = projects_with_sources(connection)
        backlog = schedule_target(connection, target, names, now=time.time())
    distro = settings.distro_of(target.name) or f"debian-{root_distro}-base"
    loaded = {d.name for d in list_distros(connection)}
    if distro not in loaded and distro in shipped_lists():
        _name, packages, source = read_package_list(distro)
        load_distro(connection, distro, packages, source)
    if target_distros(connection).get(target.name) != distro:
        set_target_distro(connection, target.name, distro)
    name = f"{LOCAL_BUILDER}-{target.platform.removeprefix('linux_')}"
    remove_builder(connection, name)
    return name, backlog
