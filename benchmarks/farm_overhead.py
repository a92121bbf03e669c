"""Benchmark: a tiny pure-Python sdist built through the farm vs a bare ``pip wheel``.

Through the farm: queue, claim over HTTP, sandboxed build, streamed upload with intake,
result recorded — the same builder code ``wheelfarm up`` runs. Bare: ``pip wheel`` of the same
sdist from the same local index, same pip options. Both run ROUNDS times, interleaved; prints
the medians, their ratio and the absolute overhead.

    python benchmarks/farm_overhead.py [--rounds 7]
    python benchmarks/farm_overhead.py --emulated arm64 [--roots DIR] [--rounds 5]

``--emulated ARCH`` (root only) builds a tiny C extension calling zlib on an emulated builder
in the ARCH root under ``DIR`` (made first if needed; ``$WHEELFARM_ROOTFS_CACHE`` by default,
else a temporary directory), against a bare ``pip wheel`` run by the same root's pip in the
same confinement, and prints how long the root took to make and its size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from tests.fixtures.fake_upstream import FakeUpstream  # noqa: E402
from tests.fixtures.sdists import make_sdist, make_zlib_sdist  # noqa: E402

from wheelfarm.builder.chroot import VENV, root_command, root_environment  # noqa: E402
from wheelfarm.builder.client import MasterClient  # noqa: E402
from wheelfarm.builder.emulated import prepare_root  # noqa: E402
from wheelfarm.builder.loop import BuilderOptions, run_builder  # noqa: E402
from wheelfarm.builder.rootfs import create_rootfs, list_rootfs  # noqa: E402
from wheelfarm.farm.api import FarmConfig, create_builder_app  # noqa: E402
from wheelfarm.farm.jobs import schedule_project  # noqa: E402
from wheelfarm.farm.registry import add_builder, add_target  # noqa: E402
from wheelfarm.http import RetryPolicy, new_client  # noqa: E402
from wheelfarm.names import canonical  # noqa: E402
from wheelfarm.store.database import open_store  # noqa: E402
from wheelfarm.targets import local_target  # noqa: E402
from wheelfarm.upstream.follow import Follower  # noqa: E402
from wheelfarm.upstream.pages import PageClient  # noqa: E402
from wheelfarm.web.runner import serve_in_thread  # noqa: E402

PIP_OPTIONS = ("--no-build-isolation",)  # the same for both: no build dependencies fetched


def bare_in_root(root: Path, upstream: FakeUpstream, name: str, scratch: Path) -> float:
    """``pip wheel`` by the root's pip, confined as the emulated builder's builds are."""
    out = Path(tempfile.mkdtemp(dir=scratch))
    pip = [f"{VENV}/bin/python", "-m", "pip", "wheel", f"{name}==1.0", "--no-deps",
           "--no-binary", name, "--index-url", upstream.simple_url, "--wheel-dir", "/build/out",
           "--no-cache-dir", "--disable-pip-version-check", *PIP_OPTIONS]  # fmt: skip
    environment = root_environment(root, "/build") | {"TMPDIR": "/build"}
    began = time.perf_counter()
    subprocess.run(
        root_command(root, pip, environment, build_dir=out),
        check=True,
        capture_output=True,
        env={"LANG": "C.UTF-8", "PIP_CONFIG_FILE": "/dev/null"},
    )
    return time.perf_counter() - began


def bare(upstream: FakeUpstream, name: str, scratch: Path) -> float:
    out = Path(tempfile.mkdtemp(dir=scratch))
    began = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            f"{name}==1.0",
            "--no-deps",
            "--no-binary",
            name,
            "--index-url",
            upstream.simple_url,
            "--wheel-dir",
            str(out),
            "--no-cache-dir",
            "--disable-pip-version-check",
            *PIP_OPTIONS,
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--emulated", metavar="ARCH", help="build in this arch's root")
    parser.add_argument("--roots", type=Path, help="data dir holding the roots")
    args = parser.parse_args()
    target = local_target()
    root: Path | None = None
    with tempfile.TemporaryDirectory() as scratch_name, FakeUpstream() as upstream:
        scratch = Path(scratch_name)
        if args.emulated:
            roots = args.roots or Path(os.environ.get("WHEELFARM_ROOTFS_CACHE") or scratch)
            began = time.perf_counter()
            root = create_rootfs(roots, args.emulated)
            made = time.perf_counter() - began
            info = next(one for one in list_rootfs(roots) if one.path == root)
            how = f"made in {made:.0f} s" if made > 30 else "already there"
            print(f"root {root.name}: {how}, {info.size / 1e6:.0f} MB")
            target = prepare_root(root).target
        engine = open_store(f"sqlite:///{scratch}/farm.sqlite")
        with engine.begin() as connection:
            add_target(connection, target)
            token = add_builder(connection, "bench", now=time.time())
        config = FarmConfig(index_url=upstream.simple_url, wheel_dir=scratch / "wheels")
        server = serve_in_thread(create_builder_app(engine, config))
        policy = RetryPolicy(retries=2, initial_wait=0.05)
        farm_times, bare_times = [], []
        with httpx.Client(timeout=120) as http, new_client(30) as pages_http:
            pages = PageClient(
                upstream.simple_url,
                f"{upstream.base_url}/pypi/{{}}/json".format,
                pages_http,
                policy,
            )
            follower = Follower(engine, pages)
            client = MasterClient(server.url, token, http, policy)
            options = BuilderOptions(workdir=scratch / "work", pip_options=PIP_OPTIONS, rootfs=root)
            for round_number in range(args.rounds):
                name = f"bench-{round_number}"
                if root is None:
                    sdist = make_sdist(scratch / "sdists", name, "1.0")
                else:
                    sdist = make_zlib_sdist(scratch / "sdists", name, "1.0")
                upstream.create(name)
                upstream.add_file(name, "1.0", sdist.name, content=sdist.read_bytes())
                follower.sync_projects([name])
                if root is None:
                    bare_times.append(bare(upstream, name, scratch))
                else:
                    bare_times.append(bare_in_root(root, upstream, name, scratch))
                began = time.perf_counter()
                with engine.begin() as connection:
                    schedule_project(connection, canonical(name), [target], now=time.time())
                run_builder(client, options, threading.Event(), jobs=1)
                farm_times.append(time.perf_counter() - began)
        server.stop()
        engine.dispose()
    farm, plain = statistics.median(farm_times), statistics.median(bare_times)
    print(
        f"farm_overhead: median farm {farm:.2f} s vs bare pip wheel {plain:.2f} s: "
        f"ratio {farm / plain:.2f}, overhead {farm - plain:.2f} s ({args.rounds} rounds"
        f"{', emulated ' + target.name if root else ''})"
    )


if __name__ == "__main__":
    main()
