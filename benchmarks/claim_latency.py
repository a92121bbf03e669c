"""Benchmark: claim latency with 1,000,000 releases queued for 3 targets, on each engine.

Fills the jobs table with 3,000,000 pending jobs (priorities spread like release order keys),
then times claims, each in its own transaction as the builder API makes them, and prints the
median and 95th percentile for SQLite and PostgreSQL side by side.

    python benchmarks/claim_latency.py [--releases 1000000] [--claims 300]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine  # noqa: E402
from tests.pg_cluster import ThrowawayCluster  # noqa: E402

from wheelfarm.farm.jobs import claim_job  # noqa: E402
from wheelfarm.store.bulk import insert_rows  # noqa: E402
from wheelfarm.store.database import open_store  # noqa: E402
from wheelfarm.store.schema import jobs  # noqa: E402

TARGETS = ("cp311-cp311-linux_armv7l", "cp311-cp311-linux_aarch64", "cp313-cp313-linux_aarch64")


def fill(engine: Engine, releases: int) -> None:
    """Queue every release for every target, in chunks of 100,000 rows."""
    rng = random.Random(0)
    chunk: list[tuple[object, ...]] = []
    with engine.begin() as connection:
        for number in range(releases):
            project, version = f"proj-{number // 10}", f"{number % 10}.0"
            priority = (1_500_000_000 + rng.randrange(300_000_000)) << 31
            for target in TARGETS:
                chunk.append(
                    (project, version, target, "pending", False, priority, None, None, 0, None, 0.0)
                )
            if len(chunk) >= 100_000:
                insert_rows(connection, jobs, chunk, lambda statement: statement)
                chunk = []
        insert_rows(connection, jobs, chunk, lambda statement: statement)


def measure(engine: Engine, claims: int) -> list[float]:
    timings = []
    now = time.time()
    for number in range(claims):
        target = TARGETS[number % len(TARGETS)]
        began = time.perf_counter()
        with engine.begin() as connection:
            job = claim_job(connection, target, "bench", now=now, lease_seconds=600)
        timings.append(time.perf_counter() - began)
        if job is None:
            raise SystemExit("the queue ran dry")
    return timings


def run(engine: Engine, releases: int, claims: int) -> str:
    fill(engine, releases)
    timings = sorted(measure(engine, claims))
    p50 = statistics.median(timings) * 1000
    p95 = timings[int(len(timings) * 0.95)] * 1000
    engine.dispose()
    return f"p50 {p50:.2f} ms, p95 {p95:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--releases", type=int, default=1_000_000)
    parser.add_argument("--claims", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        sqlite = run(open_store(f"sqlite:///{scratch}/claims.sqlite"), args.releases, args.claims)
    with ThrowawayCluster() as cluster:
        postgres = run(open_store(cluster.create_database("claims")), args.releases, args.claims)
    print(
        f"claim_latency: {args.releases:,} releases x {len(TARGETS)} targets queued: "
        f"sqlite {sqlite}; postgresql {postgres}"
    )


if __name__ == "__main__":
    main()
