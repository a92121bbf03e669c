"""Benchmark: N builders heartbeating every 5 s against one master, with history being written.

Starts a master (the builder API and the monitor's routes, served as ``up`` serves them, and
the sampler writing history every 5 s) in a process of its own, registers N builders each
holding a build, then for T seconds has every builder send a heartbeat with a full set of
readings every 5 s (spread evenly), each on its own keep-alive connection, while a dashboard
asks for its data every 5 s. Prints the heartbeat latency (median, p99), the master's CPU
(its process only, over the run), how long the dashboard's data for N builders took to serve
during the run and after it, and what reached the store.

The simulated builders are light: one asyncio loop in this process speaking HTTP/1.1 on raw
sockets (httpx spent about a millisecond of CPU per request, on the two cores the master
uses too).

    python benchmarks/heartbeats.py [--builders 1000] [--seconds 120] [--engine sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402
from tests.pg_cluster import ThrowawayCluster  # noqa: E402

from benchmarks.master_probes import install_probes  # noqa: E402
from wheelfarm.app.collector import settle_collector  # noqa: E402
from wheelfarm.farm.api import FarmConfig, create_builder_app  # noqa: E402
from wheelfarm.farm.registry import add_target, token_hash  # noqa: E402
from wheelfarm.monitor.admins import add_admin  # noqa: E402
from wheelfarm.monitor.routes import MonitorOptions, create_monitor_router  # noqa: E402
from wheelfarm.monitor.sampler import SamplerConfig, start_sampler  # noqa: E402
from wheelfarm.protocol import API_PREFIX, Health  # noqa: E402
from wheelfarm.store.database import open_store  # noqa: E402
from wheelfarm.store.schema import builder_readings, builders, jobs, samples  # noqa: E402
from wheelfarm.targets import local_target  # noqa: E402
from wheelfarm.web.runner import serve_index_in_thread  # noqa: E402

EVERY = 5.0
#: Where a master with probes answers their report (GET) and forgets them (DELETE).
PROBES = "/monitor/bench-probes"
#: A heartbeat slower than this is lined up with what the master was doing (seconds).
SLOW = 0.05


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


def serve(url: str, data_dir: str, ports: multiprocessing.Queue[int], breakdown: bool) -> None:
    """The master: the builder API, the monitor's routes and the sampler, until killed.

    With ``breakdown`` it carries probes (:mod:`benchmarks.master_probes`), read and reset at
    ``PROBES``.
    """
    engine = open_store(url)
    probes, wrap = install_probes(engine) if breakdown else (None, None)
    directory = Path(data_dir)
    config = FarmConfig(index_url="http://127.0.0.1:9/simple/", wheel_dir=directory / "wheels")
    api = create_builder_app(engine, config)
    api.include_router(create_monitor_router(engine, MonitorOptions(tree_dir=directory)))
    if probes is not None:
        api.add_api_route(PROBES, probes.report, methods=["GET"])
        api.add_api_route(PROBES, probes.clear, methods=["DELETE"])
    sampler = SamplerConfig(directory, directory, directory, interval=EVERY, min_free_disk=1)
    start_sampler(engine, sampler, threading.Event())
    server = serve_index_in_thread(directory, api=api if wrap is None else wrap(api))
    settle_collector()  # as `up` does: what was made at start frozen, fewer collections
    ports.put(int(server.url.rsplit(":", 1)[1].rstrip("/")))
    threading.Event().wait()


async def claim_all(base: str, tokens: list[str]) -> list[int]:
    """Each builder says hello and claims its build (not timed)."""
    hello = {"target": local_target().name, "python": "3", "os": "bench"}
    limits = httpx.Limits(max_connections=10)
    async with httpx.AsyncClient(base_url=base + API_PREFIX, limits=limits, timeout=120) as http:
        semaphore = asyncio.Semaphore(10)

        async def one(token: str) -> int:
            headers = {"Authorization": f"Bearer {token}"}
            async with semaphore:
                (await http.post("/hello", json=hello, headers=headers)).raise_for_status()
                answer = await http.post("/claim", headers=headers)
                answer.raise_for_status()
                return int(answer.json()["job"]["build_id"])

        return list(await asyncio.gather(*(one(t) for t in tokens)))


class Connection:
    """One keep-alive HTTP/1.1 connection, as light as can be: a request, its answer's status."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(self, method: str, path: str, headers: str, body: bytes = b"") -> int:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        answer = await self.reader.readuntil(b"\r\n\r\n")
        status = int(answer[9:12])
        length = 0
        for line in answer.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


@dataclass
class Run:
    """What the load phase measured."""

    latencies: list[float] = field(default_factory=list)
    slow: list[tuple[float, float]] = field(default_factory=list)  # (sent, answered), monotonic
    late: list[float] = field(default_factory=list)  # how late this process woke for a beat
    failures: int = 0
    dashboard: list[float] = field(default_factory=list)


def _beat(now: float) -> bytes:
    health = Health(
        load=1.0,
        load5=1.0,
        load15=1.0,
        memory_total=8 << 30,
        memory_available=4 << 30,
        disk_free_bytes=50 << 30,
        cpu_temperature=55.0,
        uptime=3600.0,
        clock=now,
    )
    return json.dumps({"health": health.model_dump()}).encode()


async def load(port: int, tokens: list[str], builds: list[int], admin: str, seconds: float) -> Run:
    """Every builder beats every 5 s, spread evenly; a dashboard polls every 5 s meanwhile."""
    run = Run()
    connections = [await Connection.open(port) for _ in tokens]
    start = time.monotonic()

    async def builder(index: int) -> None:
        headers = f"Authorization: Bearer {tokens[index]}\r\nContent-Type: application/json\r\n"
        path = f"{API_PREFIX}/builds/{builds[index]}/heartbeat"
        beat = start + EVERY * index / len(tokens)
        while beat < start + seconds:
            await asyncio.sleep(max(0.0, beat - time.monotonic()))
            run.late.append(max(0.0, time.monotonic() - beat))
            body = _beat(time.time())
            sent = time.perf_counter()
            try:
                status = await connections[index].request("POST", path, headers, body)
                run.failures += status != 200
            except (OSError, asyncio.IncompleteReadError):
                run.failures += 1
                connections[index] = await Connection.open(port)
            took = time.perf_counter() - sent
            run.latencies.append(took)  # a failure is timed too
            if took > SLOW:
                answered = time.monotonic()
                run.slow.append((answered - took, answered))
            beat += EVERY

    async def dashboard() -> None:
        connection = await Connection.open(port)
        headers = f"Authorization: Bearer {admin}\r\n"
        beat = start + EVERY / 2
        while beat < start + seconds:
            await asyncio.sleep(max(0.0, beat - time.monotonic()))
            sent = time.perf_counter()
            status = await connection.request("GET", "/monitor/data.json", headers)
            run.dashboard.append(time.perf_counter() - sent)
            if status != 200:
                raise SystemExit(f"the dashboard's data answered {status}")
            beat += EVERY
        connection.close()

    await asyncio.gather(dashboard(), *(builder(n) for n in range(len(tokens))))
    for connection in connections:
        connection.close()
    return run


def dashboard_times(base: str, admin: str, rounds: int = 10) -> list[float]:
    """The dashboard's data, asked for ``rounds`` times with nothing else going on."""
    times = []
    with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {admin}"}) as http:
        for _ in range(rounds):
            sent = time.perf_counter()
            http.get(base + "/monitor/data.json").raise_for_status()
            times.append(time.perf_counter() - sent)
    return times


def stored(url: str, since: float) -> str:
    """What reached the store: builders seen, readings kept, history samples written."""
    engine = open_store(url)
    with engine.connect() as connection:
        seen = connection.execute(
            select(func.count()).where(builders.c.last_seen >= since)
        ).scalar_one()
        readings = connection.execute(
            select(func.count()).where(builder_readings.c.received_at >= since)
        ).scalar_one()
        history = connection.execute(
            select(func.count()).where(samples.c.source.like("builder:%"))
        ).scalar_one()
    engine.dispose()
    return f"last_seen {seen}, readings {readings}, builder history samples {history}"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:.1f} ms, max {max(values) * 1000:.1f} ms"


def overlapping(
    moments: list[tuple[float, float]], spans: dict[str, list[list[float]]]
) -> dict[str, int]:
    """For each kind of span, how many of ``moments`` it overlapped (``none``: no span did)."""
    counts: dict[str, int] = {}
    for start, end in moments:
        hit = [k for k, found in spans.items() if any(s < end and e > start for s, e in found)]
        for kind in hit or ["none"]:
            counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def print_breakdown(where: str, report: dict[str, Any], run: Run) -> None:
    """What the master's probes saw during the load, and what the slow heartbeats overlapped."""
    for kind, figures in sorted(report["summary"].items()):
        print(
            f"{where}: breakdown {kind}: {figures['count']} x, total {figures['total']:.2f} s, "
            f"median {figures['p50'] * 1000:.2f} ms, p99 {figures['p99'] * 1000:.1f} ms, "
            f"max {figures['max'] * 1000:.1f} ms"
        )
    cpu = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in report["cpu"].items())
    print(f"{where}: breakdown CPU by thread: {cpu}")
    objects = ", ".join(f"{kind} {count}" for kind, count in report["gc"].items())
    print(f"{where}: breakdown objects the garbage collector tracks at the end: {objects}")
    spans = {kind: found for kind, found in report["spans"].items() if kind != "loop lag"}
    lags = [
        (start, end) for start, end in report["spans"].get("loop lag", []) if end - start >= SLOW
    ]
    print(
        f"{where}: breakdown {len(run.slow)} heartbeats over {SLOW * 1000:.0f} ms overlapped: "
        f"{overlapping(run.slow, spans)}"
    )
    print(
        f"{where}: breakdown {len(lags)} event loop stalls over {SLOW * 1000:.0f} ms overlapped: "
        f"{overlapping(lags, spans)}"
    )


def bench(
    url: str, scratch: str, builders: int, seconds: float, engine: str, breakdown: bool = False
) -> None:
    """One run against the store at ``url``; prints its figures (and the probes' breakdown)."""
    open_store(url).dispose()
    tokens, admin = prepare(url, builders)
    context = multiprocessing.get_context("spawn")
    ports: multiprocessing.Queue[int] = context.Queue()
    master = context.Process(target=serve, args=(url, scratch, ports, breakdown))
    master.start()
    try:
        port = ports.get(timeout=60)
        base = f"http://127.0.0.1:{port}"
        builds = asyncio.run(claim_all(base, tokens))
        if breakdown:
            httpx.delete(base + PROBES).raise_for_status()
        process = psutil.Process(master.pid)
        cpu_before, wall_before, began = sum(process.cpu_times()[:2]), time.monotonic(), time.time()
        run = asyncio.run(load(port, tokens, builds, admin, seconds))
        cpu = sum(process.cpu_times()[:2]) - cpu_before
        wall = time.monotonic() - wall_before
        report = httpx.get(base + PROBES, timeout=60).json() if breakdown else None
        time.sleep(2)  # the batched writer's last pass
        idle = dashboard_times(base, admin)
    finally:
        master.kill()
        master.join()
    where = f"heartbeats [{engine}] {builders} builders x every {EVERY:.0f} s x {wall:.0f} s"
    latencies = run.latencies
    print(
        f"{where}: {len(latencies)} heartbeats, {len(latencies) / wall:.0f}/s, "
        f"{run.failures} failed"
    )
    print(
        f"{where}: heartbeat latency median {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms (target < 50 ms)"
    )
    print(
        f"{where}: the simulated builders' own wake-up lateness p99 "
        f"{percentile(run.late, 0.99) * 1000:.1f} ms (the machine's noise, not the master's)"
    )
    print(f"{where}: master CPU {cpu / wall:.2f} cores (target < 0.5), sampler every 5 s")
    print(f"{where}: dashboard data during the run {ms(run.dashboard)} (target < 200 ms)")
    print(f"{where}: dashboard data after the run {ms(idle)} (target < 200 ms)")
    print(f"{where}: stored: {stored(url, began)}")
    print(
        f"{where}: machine load average at the end {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores"
    )
    if report is not None:
        print_breakdown(where, report, run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builders", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--engine", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="probe the master and print where the time went (benchmarks/master_probes.py)",
    )
    options = parser.parse_args()
    if options.engine in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as scratch:
            url = f"sqlite:///{scratch}/bench.sqlite"
            bench(url, scratch, options.builders, options.seconds, "sqlite", options.breakdown)
    if options.engine in ("postgresql", "both"):
        with tempfile.TemporaryDirectory() as scratch, ThrowawayCluster() as cluster:
            url = cluster.create_database("heartbeats")
            bench(url, scratch, options.builders, options.seconds, "postgresql", options.breakdown)


if __name__ == "__main__":
    main()
