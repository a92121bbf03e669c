"""The farm harness: a store, a fake upstream index, and the builder API on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from tests.fixtures.fake_upstream import FakeUpstream
from wheelfarm.builder.client import MasterClient
from wheelfarm.farm.api import FarmConfig, create_builder_app
from wheelfarm.farm.jobs import schedule_project
from wheelfarm.farm.registry import add_builder, add_target
from wheelfarm.http import RetryPolicy, new_client
from wheelfarm.names import canonical
from wheelfarm.protocol import Hello
from wheelfarm.targets import local_target
from wheelfarm.upstream.follow import Follower
from wheelfarm.upstream.pages import PageClient
from wheelfarm.web.runner import RunningServer, serve_in_thread

POLICY = RetryPolicy(retries=2, initial_wait=0.01, max_wait=0.05)
HEARTBEAT = 0.3  # seconds: commands reach a builder quickly, building or idle


class Clock:
    """A clock the test moves: leases expire when the test says so."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Farm:
    engine: Engine
    upstream: FakeUpstream
    server: RunningServer
    token: str
    wheels: Path
    clock: Clock
    staging: Path

    http: httpx.Client

    def client(self, token: str | None = None) -> MasterClient:
        return MasterClient(self.server.url, token or self.token, self.http, POLICY)

    def publish(self, sdist: Path, name: str, version: str) -> None:
        """Put an sdist on the fake index, follow it, and queue its build."""
        follow_sdist(self.upstream, self.engine, sdist, name, version)
        with self.engine.begin() as connection:
            schedule_project(connection, canonical(name), [local_target()], now=self.clock())


@pytest.fixture
def farm(engine: Engine, tmp_path: Path) -> Iterator[Farm]:
    clock = Clock()
    with engine.begin() as connection:
        add_target(connection, local_target())
        token = add_builder(connection, "local", now=clock())
    with FakeUpstream() as upstream:
        config = FarmConfig(
            index_url=upstream.simple_url,
            wheel_dir=tmp_path / "wheels",
            staging_dir=tmp_path / "staging",
            heartbeat_seconds=HEARTBEAT,
            idle_retry_seconds=HEARTBEAT,
        )
        server = serve_in_thread(create_builder_app(engine, config, clock))
        try:
            with httpx.Client(timeout=120) as http:
                yield Farm(
                    engine,
                    upstream,
                    server,
                    token,
                    tmp_path / "wheels",
                    clock,
                    tmp_path / "staging",
                    http,
                )
        finally:
            server.stop()


def hello(client: MasterClient) -> None:
    target = local_target()
    client.hello(Hello(target=target.name, platforms=list(target.platforms), python="3", os="x"))


def follow_sdist(
    upstream: FakeUpstream, engine: Engine, sdist: Path, name: str, version: str
) -> None:
    """Put ``sdist`` on the fake index as ``name`` ``version`` and follow that project."""
    upstream.create(name)
    upstream.add_file(name, version, sdist.name, content=sdist.read_bytes())
    with new_client(10) as http:
        pages = PageClient(
            upstream.simple_url, f"{upstream.base_url}/pypi/{{}}/json".format, http, POLICY
        )
        Follower(engine, pages).sync_projects([name])
