"""Benchmark: reconcile N projects from a distant upstream with one page reader, then with 8.

Starts the fake upstream in its own process with N projects (a create and two files each) and a
delay of 20 ms before every page answer (the round trip to a distant index; each project is two
reads, its PEP 691 page and its JSON API page). For each number of readers it catches a fresh
SQLite store up with the changelog (not timed), then times the reconcile of every project the
changelog touched: page reads, diffs and writes. Prints one line with both rates and the ratio.

    python benchmarks/reconcile_pool.py [--projects 1000] [--delay 0.02] [--workers 1,8]
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def serve(projects: int, delay: float) -> None:
    """In a child process: the fake upstream with ``projects`` projects until SIGTERM."""
    from tests.fixtures.fake_upstream import FakeUpstream

    upstream = FakeUpstream(max_rows=50_000)
    for i in range(projects):
        name = f"project-{i:06d}"
        upstream.create(name)
        upstream.add_file(name, "1.0", f"project_{i:06d}-1.0.tar.gz")
        upstream.add_file(name, "1.0", f"project_{i:06d}-1.0-py3-none-any.whl")
    upstream.page_delay = delay
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with upstream:
        print(f"READY {upstream.base_url}", flush=True)
        stop.wait()


def reconcile(base_url: str, workers: int, database: str) -> tuple[int, float]:
    """Catch a fresh store up, then reconcile it with ``workers`` readers: (projects, seconds)."""
    from wheelfarm.http import RetryPolicy, new_client
    from wheelfarm.store.database import open_store
    from wheelfarm.upstream.follow import Follower
    from wheelfarm.upstream.pages import PageClient
    from wheelfarm.upstream.prefetch import ChangelogSource

    engine = open_store(database)
    policy = RetryPolicy(retries=3, initial_wait=0.5)
    try:
        with new_client(60) as client:
            pages = PageClient(
                f"{base_url}/simple/", lambda name: f"{base_url}/pypi/{name}/json", client, policy
            )
            source = ChangelogSource(f"{base_url}/pypi", 60, policy)
            follower = Follower(engine, pages, source, workers=workers)
            follower.catch_up(prefetch=False)
            dirty = follower.dirty_projects()
            began = time.perf_counter()
            results = follower.sync_projects(dirty)
            seconds = time.perf_counter() - began
    finally:
        engine.dispose()
    failed = [r for r in results if r.error]
    if failed:
        raise SystemExit(f"{len(failed)} projects failed, e.g. {failed[0].name}: {failed[0].error}")
    return len(results), seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--projects", type=int, default=1_000)
    parser.add_argument("--delay", type=float, default=0.02, help="seconds before each page")
    parser.add_argument("--workers", default="1,8", help="reader counts to compare")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.projects, args.delay)
        return
    command = [sys.executable, __file__, "--serve", "--projects", str(args.projects)]
    upstream = subprocess.Popen(
        [*command, "--delay", str(args.delay)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    rates: dict[int, float] = {}
    try:
        assert upstream.stdout is not None
        ready = upstream.stdout.readline().split()
        if ready[:1] != ["READY"]:
            raise SystemExit(f"fake upstream did not start: {ready}")
        with tempfile.TemporaryDirectory() as scratch:
            for workers in (int(w) for w in args.workers.split(",")):
                database = f"sqlite:///{scratch}/reconcile-{workers}.sqlite"
                count, seconds = reconcile(ready[1], workers, database)
                if count != args.projects:
                    raise SystemExit(f"reconciled {count} of {args.projects} projects")
                rates[workers] = count / seconds
    finally:
        upstream.terminate()
        upstream.wait()
    from wheelfarm.words import plural

    figures = ", ".join(
        f"{plural(w, 'reader')} {rate:,.1f} projects/s" for w, rate in rates.items()
    )
    first, last = rates[min(rates)], rates[max(rates)]
    print(
        f"reconcile_pool: {args.projects:,} projects, {args.delay * 1000:g} ms a page: "
        f"{figures}; ratio {last / first:.1f}x"
    )


if __name__ == "__main__":
    main()
