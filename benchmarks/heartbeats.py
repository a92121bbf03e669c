"""Benchmark: N builders heartbeating every 5 s against one master, with history being written.

Starts a master (the builder API and the monitor's routes, the sampler every 5 s) in its own
process on SQLite, registers N builders each holding a build, then for T seconds has every
builder send a heartbeat with a full set of readings every 5 s (spread evenly). Prints the
heartbeat latency (median, p99), the master's CPU (cores, over the run) and how long the
dashboard's data for N builders takes to serve.

    python benchmarks/heartbeats.py [--builders 1000] [--seconds 120] [--database URL]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import httpx  # noqa: E402
import psutil  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from wheelfarm.farm.api import FarmConfig, create_builder_app  # noqa: E402
from wheelfarm.farm.registry import add_target, token_hash  # noqa: E402
from wheelfarm.monitor.admins import add_admin  # noqa: E402
from wheelfarm.monitor.routes import MonitorOptions, create_monitor_router  # noqa: E402
from wheelfarm.monitor.sampler import SamplerConfig, start_sampler  # noqa: E402
from wheelfarm.protocol import API_PREFIX, Health  # noqa: E402
from wheelfarm.store.database import open_store  # noqa: E402
from wheelfarm.store.schema import builders, jobs  # noqa: E402
from wheelfarm.targets import local_target  # noqa: E402
from wheelfarm.web.runner import serve_index_in_thread  # noqa: E402

EVERY = 5.0


def prepare(url: str, count: int) -> tuple[list[str], str]:
    """N builders with tokens and one pending job each; returns their tokens and an admin's."""
    engine = open_store(url)
    target = local_target().name
    tokens = [f"token-{n:06d}-{'x' * 20}" for n in range(count)]
    now = time.time()
    with engine.begin() as connection:
        add_target(connection, local_target())
        admin = add_admin(connection, "bench", now=now)
        rows = [
            {"name": f"b{n:06d}", "token_hash": token_hash(t), "created_at": now}
            for n, t in enumerate(tokens)
        ]
        connection.execute(insert(builders), rows)
        queued = [
            {
                "project": f"p{n}",
                "version": "1",
                "target": target,
                "state": "pending",
                "updated_at": now,
            }
            for n in range(count)
        ]
        connection.execute(insert(jobs), queued)
    engine.dispose()
    return tokens, admin


def serve(url: str, data_dir: str, ports: multiprocessing.Queue[int]) -> None:
    """The master: the builder API, the monitor's routes and the sampler, until killed."""
    engine = open_store(url)
    directory = Path(data_dir)
    config = FarmConfig(index_url="http://127.0.0.1:9/simple/", wheel_dir=directory / "wheels")
    api = create_builder_app(engine, config)
    api.include_router(create_monitor_router(engine, MonitorOptions(tree_dir=directory)))
    sampler = SamplerConfig(directory, directory, directory, interval=EVERY, min_free_disk=1)
    start_sampler(engine, sampler, threading.Event())
    server = serve_index_in_thread(directory, api=api)
    ports.put(int(server.url.rsplit(":", 1)[1].rstrip("/")))
    threading.Event().wait()


async def claim_all(base: str, tokens: list[str]) -> list[int]:
    """Each builder says hello and claims its build."""
    hello = {"target": local_target().name, "python": "3", "os": "bench"}
    limits = httpx.Limits(max_connections=10)
    async with httpx.AsyncClient(base_url=base + API_PREFIX, limits=limits, timeout=60) as http:
        semaphore = asyncio.Semaphore(10)

        async def one(token: str) -> int:
            headers = {"Authorization": f"Bearer {token}"}
            async with semaphore:
                (await http.post("/hello", json=hello, headers=headers)).raise_for_status()
                answer = await http.post("/claim", headers=headers)
                answer.raise_for_status()
                return int(answer.json()["job"]["build_id"])

        return list(await asyncio.gather(*(one(t) for t in tokens)))


async def heartbeat_for(
    base: str, tokens: list[str], builds: list[int], seconds: float
) -> list[float]:
    """Every builder beats every 5 s, spread evenly; returns each heartbeat's latency."""
    latencies: list[float] = []
    failures = 0
    limits = httpx.Limits(max_connections=200)
    timeout = httpx.Timeout(60.0, pool=None)  # a builder waits its turn; it is timed meanwhile
    async with httpx.AsyncClient(
        base_url=base + API_PREFIX, limits=limits, timeout=timeout
    ) as http:
        start = time.monotonic()

        async def builder(index: int) -> None:
            nonlocal failures
            headers = {"Authorization": f"Bearer {tokens[index]}"}
            path = f"/builds/{builds[index]}/heartbeat"
            beat = start + EVERY * index / len(tokens)
            while beat < start + seconds:
                await asyncio.sleep(max(0.0, beat - time.monotonic()))
                health = Health(
                    load=1.0,
                    load5=1.0,
                    load15=1.0,
                    memory_total=8 << 30,
                    memory_available=4 << 30,
                    disk_free_bytes=50 << 30,
                    cpu_temperature=55.0,
                    uptime=3600.0,
                    clock=time.time(),
                )
                sent = time.perf_counter()
                try:
                    answer = await http.post(
                        path, json={"health": health.model_dump()}, headers=headers
                    )
                    failures += answer.status_code != 200
                except httpx.HTTPError:
                    failures += 1
                latencies.append(time.perf_counter() - sent)  # a failure is timed too
                beat += EVERY

        await asyncio.gather(*(builder(n) for n in range(len(tokens))))
    if failures:
        print(f"  {failures} heartbeats failed")
    return latencies


def dashboard_times(base: str, admin: str, rounds: int = 10) -> list[float]:
    times = []
    with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {admin}"}) as http:
        for _ in range(rounds):
            sent = time.perf_counter()
            http.get(base + "/monitor/data.json").raise_for_status()
            times.append(time.perf_counter() - sent)
    return times


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builders", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--database", default="", help="default: SQLite in a temporary directory")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        url = options.database or f"sqlite:///{scratch}/bench.sqlite"
        open_store(url).dispose()
        tokens, admin = prepare(url, options.builders)
        ports: multiprocessing.Queue[int] = multiprocessing.get_context("spawn").Queue()
        master = multiprocessing.get_context("spawn").Process(
            target=serve, args=(url, scratch, ports)
        )
        master.start()
        try:
            base = f"http://127.0.0.1:{ports.get(timeout=60)}"
            builds = asyncio.run(claim_all(base, tokens))
            process = psutil.Process(master.pid)
            cpu_before, wall_before = sum(process.cpu_times()[:2]), time.monotonic()
            latencies = asyncio.run(heartbeat_for(base, tokens, builds, options.seconds))
            cpu = sum(process.cpu_times()[:2]) - cpu_before
            wall = time.monotonic() - wall_before
            served = dashboard_times(base, admin)
        finally:
            master.kill()
            master.join()
    print(f"{options.builders} builders, one heartbeat each every {EVERY:.0f} s, for {wall:.0f} s")
    print(f"  heartbeats: {len(latencies)}, {len(latencies) / wall:.0f}/s")
    print(
        f"  heartbeat latency: median {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms (target < 50 ms)"
    )
    print(
        f"  master CPU: {cpu / wall:.2f} cores (target < 0.5), sampler writing every {EVERY:.0f} s"
    )
    print(
        f"  dashboard data for {options.builders} builders: median "
        f"{statistics.median(served) * 1000:.0f} ms, max {max(served) * 1000:.0f} ms"
        " (target < 200 ms)"
    )


if __name__ == "__main__":
    main()
