"""Building: a tiny sdist through the farm against a bare ``pip wheel`` of the same sdist.

Through the farm: queue, claim over HTTP, sandboxed build, streamed upload with intake, result
recorded (the builder code ``wheelfarm up`` runs). Bare: ``pip wheel`` from the same local
index with the same options (benchmarks/farm_overhead.py's ``bare``), natively; and both
again inside an emulated arm64 root file system under qemu (a tiny C extension calling zlib,
with the root's own pip confined as the emulated builder's builds are). The root is looked for
under ``$WHEELFARM_ROOTFS_CACHE``, else in the suite's cache; the default size makes it there
when it is missing (``wheelfarm rootfs create``'s code: minutes, once, about 520 MB kept), the
quick size only uses one that is ready.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import httpx
from tests.fixtures.fake_upstream import FakeUpstream
from tests.fixtures.sdists import make_sdist, make_zlib_sdist

from benchmarks.farm_overhead import PIP_OPTIONS, bare, bare_in_root
from benchmarks.suite.measure import Measurement, NotMeasured, Race, interleave, not_measured
from benchmarks.suite.tools import cache_dir
from wheelfarm.builder.client import MasterClient
from wheelfarm.builder.emulated import prepare_root
from wheelfarm.builder.emulation import RootfsError
from wheelfarm.builder.loop import BuilderOptions, run_builder
from wheelfarm.builder.rootfs import create_rootfs, list_rootfs
from wheelfarm.errors import WheelfarmError
from wheelfarm.farm.api import FarmConfig, create_builder_app
from wheelfarm.farm.jobs import schedule_project
from wheelfarm.farm.registry import add_builder, add_target
from wheelfarm.http import RetryPolicy, new_client
from wheelfarm.names import canonical
from wheelfarm.store.database import open_store
from wheelfarm.targets import Target, local_target
from wheelfarm.upstream.follow import Follower
from wheelfarm.upstream.pages import PageClient
from wheelfarm.web.runner import serve_in_thread

__all__ = ["BuildingSize", "measure_building"]

AREA = "building"
UNIT = "s"
POLICY = RetryPolicy(retries=2, initial_wait=0.05)


@dataclass(frozen=True)
class BuildingSize:
    rounds: int
    make_root: bool  # make the emulated root when none is ready (minutes, once)


def _rootfs_cache() -> Path:
    """Where emulated roots are kept: ``$WHEELFARM_ROOTFS_CACHE``, else the suite's cache."""
    return Path(os.environ.get("WHEELFARM_ROOTFS_CACHE") or cache_dir())


def _emulated_root(make: bool) -> Path | str:
    """A ready arm64 (else any) root, made when ``make`` and none is; else why there is none."""
    cache = _rootfs_cache()
    ready = [info for info in list_rootfs(cache) if info.ready]
    ready.sort(key=lambda info: info.arch != "arm64")
    if ready:
        return ready[0].path
    if not make:
        return f"no ready root under {cache} (the default size makes one)"
    print(f"making an arm64 root under {cache} for the emulated build (minutes, once)")
    try:
        return create_rootfs(cache, "arm64")
    except RootfsError as error:
        return f"cannot make an arm64 root: {error}"


@contextmanager
def _farm(root: Path | None, rounds: int) -> Iterator[Race]:
    """Yield the race of farm builds against bare ones, in ``root`` when one is given."""
    with tempfile.TemporaryDirectory(prefix="bench-build-") as temp, FakeUpstream() as upstream:
        scratch = Path(temp)
        target: Target = local_target() if root is None else prepare_root(root).target
        engine = open_store(f"sqlite:///{scratch}/farm.sqlite")
        with engine.begin() as connection:
            add_target(connection, target)
            token = add_builder(connection, "bench", now=time.time())
        config = FarmConfig(index_url=upstream.simple_url, wheel_dir=scratch / "wheels")
        server = serve_in_thread(create_builder_app(engine, config))
        numbers = count()
        try:
            with httpx.Client(timeout=300) as http, new_client(30) as pages_http:
                pages = PageClient(upstream.simple_url,
                                   f"{upstream.base_url}/pypi/{{}}/json".format, pages_http,
                                   POLICY)  # fmt: skip
                follower = Follower(engine, pages)
                client = MasterClient(server.url, token, http, POLICY)
                options = BuilderOptions(workdir=scratch / "work", pip_options=PIP_OPTIONS,
                                         rootfs=root)  # fmt: skip

                def project() -> str:
                    name = f"bench-{next(numbers)}"
                    make = make_sdist if root is None else make_zlib_sdist
                    sdist = make(scratch / "sdists", name, "1.0")
                    upstream.create(name)
                    upstream.add_file(name, "1.0", sdist.name, content=sdist.read_bytes())
                    follower.sync_projects([name])
                    return name

                def through_farm() -> float:
                    name = project()
                    began = time.perf_counter()
                    with engine.begin() as connection:
                        schedule_project(connection, canonical(name), [target], now=time.time())
                    run_builder(client, options, threading.Event(), jobs=1)
                    return time.perf_counter() - began

                def bare_build() -> float:
                    name = project()
                    if root is None:
                        return bare(upstream, name, scratch)
                    return bare_in_root(root, upstream, name, scratch)

                bare_name = "bare pip wheel" if root is None else "bare pip wheel in the root"
                yield interleave(rounds, {"farm": through_farm, bare_name: bare_build})
        finally:
            server.stop()
            engine.dispose()


def measure_building(size: BuildingSize) -> list[Measurement]:
    """Seconds per build: the farm against a bare ``pip wheel``, natively and emulated."""
    rows = []
    native = "tiny pure-Python sdist built, native (median seconds; ratio is the overhead)"
    with _farm(None, size.rounds) as race:
        rows.append(race.row(AREA, native, UNIT, "farm", "bare pip wheel"))
    emulated = "tiny C-extension sdist built under qemu in an emulated root"
    root = _emulated_root(size.make_root)
    if isinstance(root, str):
        rows.append(not_measured(AREA, emulated, UNIT, "bare pip wheel in the root",
                                 root))  # fmt: skip
        return rows
    try:
        with _farm(root, size.rounds) as race:
            rows.append(race.row(AREA, f"{emulated} ({root.name})", UNIT, "farm",
                                 "bare pip wheel in the root"))  # fmt: skip
    except (WheelfarmError, OSError, NotMeasured) as error:
        rows.append(not_measured(AREA, emulated, UNIT, "bare pip wheel in the root",
                                 f"{root.name}: {error}"))  # fmt: skip
    return rows
