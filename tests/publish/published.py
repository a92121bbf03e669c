"""A real published index for the client tests: sdists on a fake upstream, followed, built by a
real builder through the builder API, one wheel imported, the tree written, and served."""

from __future__ import annotations

import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from tests.fixtures.fake_upstream import FakeUpstream
from tests.fixtures.sdists import make_sdist
from wheelfarm.builder.client import MasterClient
from wheelfarm.builder.loop import BuilderOptions, run_builder
from wheelfarm.farm.api import FarmConfig, create_builder_app
from wheelfarm.farm.jobs import schedule_project
from wheelfarm.farm.registry import add_builder, add_target, list_targets
from wheelfarm.farm.wheels import import_wheel
from wheelfarm.http import RetryPolicy, new_client
from wheelfarm.names import canonical
from wheelfarm.publish.regenerate import write_all
from wheelfarm.publish.tree import Tree
from wheelfarm.store.database import open_store
from wheelfarm.store.schema import jobs
from wheelfarm.targets import local_target
from wheelfarm.upstream.follow import Follower
from wheelfarm.upstream.pages import PageClient
from wheelfarm.web.runner import RunningServer, serve_in_thread, serve_index_in_thread

POLICY = RetryPolicy(retries=2, initial_wait=0.01, max_wait=0.05)

#: (project, version, sdist options); 1.1 is yanked upstream, 1.2 wants a future Python (so it
#: is skipped here and its wheel is imported), 2.0rc1 is a pre-release.
RELEASES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("demo-client", "1.0", {}),
    ("demo-client", "1.1", {}),
    ("demo-client", "1.2", {"requires_python": ">=3.99"}),
    ("demo-client", "2.0rc1", {}),
    ("demo-ext", "1.0", {"kind": "c"}),
    ("demo-broken", "1.0", {"fail_build": True}),
)
YANK_REASON = "broken import; use 1.0"


@dataclass
class Published:
    url: str  # the index server's base URL, no trailing slash
    root: Path  # the tree
    server: RunningServer


def _sync(engine_url: str, upstream: FakeUpstream, names: list[str]) -> None:
    engine = open_store(engine_url)
    with new_client(10) as http:
        json_url = f"{upstream.base_url}/pypi/{{}}/json".format
        pages = PageClient(upstream.simple_url, json_url, http, POLICY)
        Follower(engine, pages).sync_projects(names)
    engine.dispose()


def publish_demo_index(base: Path) -> Published:
    """Build the demo index under ``base`` and serve it on loopback (the caller stops it)."""
    database = f"sqlite:///{base / 'wheelfarm.sqlite'}"
    engine = open_store(database)
    tree = Tree(base / "www", base / "withdrawn")
    names = sorted({name for name, _, _ in RELEASES})
    with FakeUpstream() as upstream:
        upstream_url = upstream.simple_url
        for name in names:
            upstream.create(name)
            upstream.set_summary(name, f"{name}: a <demo> & nothing more")
        for name, version, options in RELEASES:
            sdist = make_sdist(base / "sdists", name, version, **options)
            requires_python = options.get("requires_python")
            upstream.add_file(
                name,
                version,
                sdist.name,
                content=sdist.read_bytes(),
                requires_python=None if requires_python is None else str(requires_python),
            )
        upstream.yank("demo-client", "1.1", YANK_REASON)
        _sync(database, upstream, names)
        with engine.begin() as connection:
            add_target(connection, local_target())
            token = add_builder(connection, "local", now=0.0)
            for name in names:
                schedule_project(connection, canonical(name), list_targets(connection), now=0.0)
            queued = connection.execute(
                select(func.count()).where(jobs.c.state == "pending")
            ).scalar_one()
        assert queued == 5, queued  # demo-client 1.2 is skipped: it wants Python >= 3.99
        config = FarmConfig(index_url=upstream.simple_url, wheel_dir=tree.files)
        master = serve_in_thread(create_builder_app(engine, config))
        try:
            with httpx.Client(timeout=120) as http:
                client = MasterClient(master.url, token, http, POLICY)
                builder_options = BuilderOptions(
                    workdir=base / "work", pip_options=("--no-build-isolation",)
                )
                run_builder(client, builder_options, threading.Event(), jobs=queued)
        finally:
            master.stop()
    # The release that wants a future Python: built here anyway, and imported.
    sdist = base / "sdists" / "demo_client-1.2.tar.gz"
    wheels = base / "imported"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--ignore-requires-python", "--no-index", "-w", str(wheels), str(sdist)],
        check=True, capture_output=True,
    )  # fmt: skip
    with engine.begin() as connection:
        for wheel in wheels.glob("*.whl"):
            import_wheel(connection, wheel, tree.files, now=0.0)
    write_all(engine, tree, upstream_simple_url=upstream_url, base_url="http://localhost")
    engine.dispose()
    server = serve_index_in_thread(tree.root, access_log=True)
    return Published(url=server.url, root=tree.root, server=server)
