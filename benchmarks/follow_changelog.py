"""Benchmark: replay synthetic changelog events from a local XML-RPC server into each engine.

Starts the fake upstream (pre-encoded answers, in its own process) with N events of a realistic
mix, then for SQLite and for a throwaway PostgreSQL cluster runs the follower's catch-up in a
fresh process and measures events applied per second (end to end: HTTP, XML-RPC decoding,
journal, apply, commit) and peak memory (the follower and its prefetch child). Prints one line.

    python benchmarks/follow_changelog.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run_worker(database: str, changelog: str) -> None:
    """In a fresh process: catch up from the changelog into ``database``; print a JSON result."""
    from wheelfarm.http import RetryPolicy, new_client
    from wheelfarm.store.database import open_store
    from wheelfarm.upstream.follow import Follower
    from wheelfarm.upstream.pages import PageClient
    from wheelfarm.upstream.prefetch import ChangelogSource

    engine = open_store(database)
    policy = RetryPolicy(retries=3, initial_wait=0.5)
    with new_client(60) as client:
        pages = PageClient(changelog, lambda name: None, client, policy)  # unused: no reconcile
        follower = Follower(engine, pages, ChangelogSource(changelog, 120, policy))
        began = time.perf_counter()
        summary = follower.catch_up()
        seconds = time.perf_counter() - began
    engine.dispose()
    writer_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    reader_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        json.dumps(
            {
                "events": summary.events,
                "seconds": seconds,
                "peak_mb": max(writer_kib, reader_kib) / 1024,
                "writer_mb": writer_kib / 1024,
                "reader_mb": reader_kib / 1024,
            }
        )
    )


def measure(database: str, changelog: str) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--worker", database, changelog],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    result: dict[str, float] = json.loads(output.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--worker", nargs=2, metavar=("DATABASE", "CHANGELOG"))
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    if args.worker:
        run_worker(*args.worker)
        return

    from tests.pg_cluster import ThrowawayCluster

    upstream = subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.fake_upstream", "--events", str(args.events)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert upstream.stdout is not None
        ready = upstream.stdout.readline().split()
        if ready[:1] != ["READY"]:
            raise SystemExit(f"fake upstream did not start: {ready}")
        changelog = ready[1] + "/pypi"
        figures = []
        with tempfile.TemporaryDirectory() as scratch:
            for engine in args.engines.split(","):
                if engine == "sqlite":
                    result = measure(f"sqlite:///{scratch}/bench.sqlite", changelog)
                else:
                    with ThrowawayCluster() as cluster:
                        result = measure(cluster.create_database("bench"), changelog)
                if result["events"] != args.events:
                    raise SystemExit(f"{engine}: applied {result['events']} of {args.events}")
                rate = result["events"] / result["seconds"]
                figures.append(
                    f"{engine} {rate:,.0f} events/s (peak {result['writer_mb']:.0f} MB writer, "
                    f"{result['reader_mb']:.0f} MB reader)"
                )
    finally:
        upstream.terminate()
        upstream.wait()
    print(f"follow_changelog: {args.events:,} events: " + ", ".join(figures))


if __name__ == "__main__":
    main()
