"""The monitor harness: a store, the builder API with the monitor's routes on loopback, a
builder and an admin, and a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from tests.farm.conftest import POLICY, Clock
from wheelfarm.builder.client import MasterClient
from wheelfarm.farm.api import FarmConfig, create_builder_app
from wheelfarm.farm.lease_book import LeaseBook
from wheelfarm.farm.presence import Presence
from wheelfarm.farm.registry import add_builder, add_target
from wheelfarm.monitor.admins import add_admin
from wheelfarm.monitor.routes import MonitorOptions, create_monitor_router
from wheelfarm.protocol import Hello
from wheelfarm.store.schema import jobs
from wheelfarm.targets import local_target
from wheelfarm.web.runner import RunningServer, serve_index_in_thread


@dataclass
class Master:
    engine: Engine
    server: RunningServer
    builder_token: str
    admin_token: str
    clock: Clock
    http: httpx.Client
    tree: Path
    presence: Presence
    book: LeaseBook

    def flush(self) -> None:
        """Write what requests noted (last seen, leases, readings) now, not within a second."""
        self.presence.flush()

    @property
    def url(self) -> str:
        return self.server.url

    def builder(self, token: str | None = None) -> MasterClient:
        return MasterClient(self.url, token or self.builder_token, self.http, POLICY)

    def hello(self, token: str | None = None, label: str = "bench") -> None:
        target = local_target()
        self.builder(token).hello(
            Hello(target=target.name, python="3", os="x", label=label, platforms=[])
        )

    def builder_target(self) -> str:
        return local_target().name

    def claim_a_build(self) -> int:
        """Queue one job for this machine's target and have the builder claim it: its build id."""
        with self.engine.begin() as connection:
            connection.execute(
                jobs.insert().values(
                    project="demo",
                    version="1.0",
                    target=local_target().name,
                    state="pending",
                    updated_at=self.clock(),
                )
            )
        self.hello()
        claimed = self.builder().claim()
        assert claimed.job is not None
        return claimed.job.build_id

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}


def monitored_api(engine: Engine, tmp_path: Path, clock: Clock, options: MonitorOptions) -> FastAPI:
    """The builder API with the monitor's routes, as ``up`` wires them."""
    config = FarmConfig(index_url="http://127.0.0.1:9/simple/", wheel_dir=tmp_path / "wheels")
    api = create_builder_app(engine, config, clock)
    api.include_router(create_monitor_router(engine, options, clock))
    return api


def start_master(
    engine: Engine, tmp_path: Path, clock: Clock, options: MonitorOptions
) -> RunningServer:
    """The index server with the builder API and the monitor's routes."""
    assert options.tree_dir is not None
    return serve_index_in_thread(
        options.tree_dir, api=monitored_api(engine, tmp_path, clock, options)
    )


@pytest.fixture
def master(engine: Engine, tmp_path: Path) -> Iterator[Master]:
    clock = Clock()
    with engine.begin() as connection:
        add_target(connection, local_target())
        builder_token = add_builder(connection, "pi-1", now=clock())
        admin_token = add_admin(connection, "alice", now=clock())
    tree = tmp_path / "www"
    (tree / "simple").mkdir(parents=True)
    api = monitored_api(engine, tmp_path, clock, MonitorOptions(tree_dir=tree))
    server = serve_index_in_thread(tree, api=api)
    try:
        with httpx.Client(timeout=30) as http:
            yield Master(
                engine,
                server,
                builder_token,
                admin_token,
                clock,
                http,
                tree,
                api.state.presence,
                api.state.book,
            )
    finally:
        server.stop()
