"""Emulated builders: real arm64 and armhf roots, a master on loopback, real builds inside.

The roots are made once per run by :func:`~wheelfarm.builder.rootfs.create_rootfs` (a few
minutes each). ``WHEELFARM_ROOTFS_CACHE=DIR`` makes them under ``DIR`` instead of a temporary
directory, so later runs reuse them (``create_rootfs`` returns a complete root at once); every
test still builds in its own work directory. Where this machine cannot emulate an architecture
the tests using its root are skipped with the reason, unless ``WHEELFARM_REQUIRE_EMULATION=1``
(CI), which makes that a failure.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from tests.farm.conftest import POLICY, Clock, follow_sdist
from tests.fixtures.fake_upstream import FakeUpstream
from wheelfarm.builder.chroot import VENV, root_command, root_environment, root_target
from wheelfarm.builder.client import MasterClient
from wheelfarm.builder.rootfs import create_rootfs, emulation_problem
from wheelfarm.farm.api import FarmConfig, create_builder_app
from wheelfarm.farm.jobs import schedule_project
from wheelfarm.farm.registry import add_builder, add_target
from wheelfarm.names import canonical
from wheelfarm.store.database import open_store
from wheelfarm.targets import Target
from wheelfarm.web.runner import RunningServer, serve_in_thread

ARCHES = ("arm64", "armhf")
#: Seconds each root took to make in this run (absent when it came from the cache).
CREATION: dict[str, float] = {}


def unavailable(reason: str) -> None:
    if os.environ.get("WHEELFARM_REQUIRE_EMULATION") == "1":
        pytest.fail(f"WHEELFARM_REQUIRE_EMULATION=1, but: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def roots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = os.environ.get("WHEELFARM_ROOTFS_CACHE")
    return Path(cache) if cache else tmp_path_factory.mktemp("roots")


@pytest.fixture(scope="session", params=ARCHES)
def root(request: pytest.FixtureRequest, roots_dir: Path) -> Path:
    """A complete root of each architecture, made once per run (or found in the cache)."""
    arch: str = request.param
    if os.geteuid() != 0:
        unavailable("emulated builders need root (mmdebstrap, chroot, mounts)")
    problem = emulation_problem(arch)
    if problem is not None:
        unavailable(problem)
    started = time.monotonic()
    path = create_rootfs(roots_dir, arch)
    if time.monotonic() - started > 30:
        CREATION[arch] = time.monotonic() - started
    return path


def run_in_root(root: Path, build_dir: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with the root's venv python, as the build user, ``build_dir`` at /build."""
    return subprocess.run(
        root_command(
            root, [f"{VENV}/bin/python", "-c", code], root_environment(root, "/build"),
            build_dir=build_dir,
        ),
        capture_output=True,
        text=True,
        env={"LANG": "C.UTF-8"},
        timeout=600,
        check=False,
    )  # fmt: skip


@dataclass
class RootFarm:
    """A master on loopback that builds for one root's target, and its fake upstream."""

    engine: Engine
    upstream: FakeUpstream
    server: RunningServer
    token: str
    wheels: Path
    target: Target
    http: httpx.Client
    clock: Clock

    def client(self) -> MasterClient:
        return MasterClient(self.server.url, self.token, self.http, POLICY)

    def publish(self, sdist: Path, name: str, version: str) -> None:
        """Put an sdist on the fake index, follow it, and queue its build for the target."""
        follow_sdist(self.upstream, self.engine, sdist, name, version)
        with self.engine.begin() as connection:
            schedule_project(connection, canonical(name), [self.target], now=self.clock())


@pytest.fixture
def root_farm(root: Path, tmp_path: Path) -> Iterator[RootFarm]:
    """The master for ``root``'s target (SQLite: these tests are about builds, not storage)."""
    clock = Clock()
    target = root_target(root)
    engine = open_store(f"sqlite:///{tmp_path}/farm.sqlite")
    with engine.begin() as connection:
        add_target(connection, target)
        token = add_builder(connection, "emulated", now=clock())
    with FakeUpstream() as upstream:
        config = FarmConfig(
            index_url=upstream.simple_url,
            wheel_dir=tmp_path / "wheels",
            heartbeat_seconds=0.5,
            idle_retry_seconds=0.5,
        )
        server = serve_in_thread(create_builder_app(engine, config, clock))
        try:
            with httpx.Client(timeout=300) as http:
                yield RootFarm(
                    engine, upstream, server, token, tmp_path / "wheels", target, http, clock
                )
        finally:
            server.stop()
            engine.dispose()
