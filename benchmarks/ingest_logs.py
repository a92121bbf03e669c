"""Ingest N combined-format lines (real pip and uv user agents) into SQLite and PostgreSQL.

The log is what a busy index writes in a day, in time order: 3,000 projects with Zipf-like
popularity (the first is asked for a thousand times as often as the last), 50,000 client
addresses, about 600 distinct user agents made the way pip and uv make theirs (versions of
pip, uv, Python, distros, kernels, CPUs), a few browsers and crawlers; 60 % wheel downloads
(some range requests), 33 % simple pages, project pages and JSON, and some 304s and 404s.
nginx's escaping (``\\x22`` for a quote).

Prints one line per engine, lines/s of what ``wheelfarm logs ingest FILE`` runs once its
command line is read: the log written to a file beforehand, then read from it
(``read_lines``), parsed, counted and written by ``LogIngester``, writing in a child process
started for it (``--in-process``: in this one), until the last batch is committed and the
child has ended. The store is made and migrated beforehand; the command's own start (the
interpreter, its imports: about 0.3 s) is not counted. Figures by the clock and per
CPU-second of both processes. PostgreSQL runs in a throwaway cluster (tests/pg_cluster.py),
or at ``--postgres URL`` (an empty database); ``--no-postgres`` skips it.

    python benchmarks/ingest_logs.py [--lines 1000000] [--batch N] [--in-process]
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.pg_cluster import PostgresUnavailable, ThrowawayCluster  # noqa: E402

from wheelfarm.stats.logs import LogIngester  # noqa: E402
from wheelfarm.stats.sources import read_lines  # noqa: E402
from wheelfarm.store.database import open_store  # noqa: E402

PROJECTS = 3_000
CLIENTS = 50_000
SPAN = 86400
TAGS = ["cp311-cp311-manylinux_2_28_aarch64", "cp312-cp312-linux_armv7l", "py3-none-any"]
DISTROS = [
    ("Debian GNU/Linux", "12", "bookworm", "2.36"),
    ("Debian GNU/Linux", "11", "bullseye", "2.31"),
    ("Raspbian GNU/Linux", "12", "bookworm", "2.36"),
    ("Ubuntu", "24.04", "noble", "2.39"),
    ("Ubuntu", "22.04", "jammy", "2.35"),
]
KERNELS = ["6.1.0-18-arm64", "6.6.31+rpt-rpi-v8", "6.8.0-45-generic"]
PYTHONS = ["3.9.2", "3.11.2", "3.12.3", "3.13.0"]
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CRAWLER = "Mozilla/5.0 (compatible; bingbot/2.0; +http://crawler.example.org/bot.htm)"


def pip_agent(pip: str, python: str, distro: tuple[str, str, str, str], kernel: str) -> str:
    """pip's user agent: ``pip/VERSION`` and sorted compact JSON (pip's own layout)."""
    name, version, codename, glibc = distro
    data = {
        "ci": None,
        "cpu": "aarch64" if "arm64" in kernel or "rpi" in kernel else "x86_64",
        "distro": {
            "id": codename,
            "libc": {"lib": "glibc", "version": glibc},
            "name": name,
            "version": version,
        },
        "implementation": {"name": "CPython", "version": python},
        "installer": {"name": "pip", "version": pip},
        "openssl_version": "OpenSSL 3.0.15 3 Sep 2024",
        "python": python,
        "setuptools_version": "66.1.1",
        "system": {"name": "Linux", "release": kernel},
    }
    return f"pip/{pip} " + json.dumps(data, separators=(",", ":"), sort_keys=True)


def uv_agent(uv: str, python: str, distro: tuple[str, str, str, str], ci: bool) -> str:
    """uv's user agent: ``uv/VERSION`` and its linehaul JSON, fields in uv's order."""
    name, version, codename, glibc = distro
    data = {
        "installer": {"name": "uv", "version": uv},
        "python": python,
        "implementation": {"name": "CPython", "version": python},
        "distro": {
            "name": name,
            "version": version,
            "id": codename,
            "libc": {"lib": "glibc", "version": glibc},
        },
        "system": {"name": "Linux", "release": "6.8.0-45-generic"},
        "cpu": "x86_64",
        "openssl_version": None,
        "setuptools_version": None,
        "rustc_version": None,
        "ci": True if ci else None,
    }
    return f"uv/{uv} " + json.dumps(data, separators=(",", ":"))


def user_agents() -> list[str]:
    pips = ["23.0.1", "23.3.2", "24.0", "24.2", "24.3.1", "25.0.1"]
    uvs = ["0.4.18", "0.5.4", "0.6.2", "0.7.3"]
    found = [
        pip_agent(*combination)
        for combination in itertools.product(pips, PYTHONS, DISTROS, KERNELS)
    ]
    found += [
        uv_agent(*combination)
        for combination in itertools.product(uvs, PYTHONS, DISTROS, [False, True])
    ]
    return found


def zipf(count: int, exponent: float = 0.85) -> list[float]:
    """Cumulative weights: the n-th of ``count`` is asked for in proportion to 1/n**exponent."""
    return list(itertools.accumulate(1 / (n + 1) ** exponent for n in range(count)))


def make_lines(count: int, now: float) -> list[bytes]:
    """``count`` lines of the day up to ``now``, oldest first, as nginx writes them."""
    pick = random.Random(15)
    agents = user_agents()
    pick.shuffle(agents)
    agent_weights = zipf(len(agents))
    projects = pick.choices(range(PROJECTS), cum_weights=zipf(PROJECTS), k=count)
    chosen_agents = pick.choices(agents, cum_weights=agent_weights, k=count)
    lines = []
    for i in range(count):
        at = now - SPAN + (i * SPAN) // count
        stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(at))
        agent = chosen_agents[i]
        roll = pick.random()
        if roll < 0.01:
            agent = CRAWLER
        elif roll < 0.03:
            agent = BROWSER
        project = f"project-{projects[i]:04d}"
        dist = project.replace("-", "_")
        status = 200
        roll = pick.random()
        if roll < 0.60:
            version = f"1.{pick.randrange(3)}.{pick.randrange(2)}"
            path = f"/files/{project}/{dist}-{version}-{pick.choice(TAGS)}.whl"
            status = 206 if roll < 0.01 else 200
        elif roll < 0.93:
            path = f"/simple/{project}/"
            status = 304 if roll > 0.90 else 200
        elif roll < 0.96:
            path = f"/project/{project}/"
        elif roll < 0.98:
            path = f"/project/{project}/json"
        else:
            path = f"/simple/{project}x/"
            status = 404
        number = pick.randrange(CLIENTS)  # 50,000 addresses, not 350,000 as it made before
        client = f"10.{number >> 16}.{(number >> 8) & 255}.{number & 255}"
        size = 1000 + pick.randrange(100_000)
        escaped = agent.replace("\\", "\\x5C").replace('"', "\\x22")
        line = f'{client} - - [{stamp}] "GET {path} HTTP/1.1" {status} {size} "-" "{escaped}"\n'
        lines.append(line.encode())
    return lines


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (the writer)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def rate(
    url: str, log: Path, count: int, now: float, batch: int | None = None, child: bool = True
) -> str:
    """lines/s of one ingest of the ``count`` lines of ``log`` into the store at ``url``, as
    ``logs ingest`` does it: by the clock, and per second of CPU time, this process's and its
    writer's (the figure a busy shared machine disturbs less). The writer's start and end are
    counted; the store is made beforehand."""
    engine = open_store(url)
    started, cpu = time.perf_counter(), cpu_seconds()
    ingester = LogIngester(engine, b"b" * 32, now=now, child=child)
    if batch is not None:
        ingester.batch = batch
    with ingester:
        ingester.feed(read_lines(log))
        ingester.flush()
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    engine.dispose()
    report = ingester.report
    if report.lines != count or report.hits < count // 2:
        raise SystemExit(f"the ingest did not count what it should: {report.as_json()}")
    return f"{count / elapsed:,.0f} lines/s ({count / cpu:,.0f} per CPU-second)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--postgres", help="a PostgreSQL URL (an empty database)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--batch", type=int, help="hits a transaction (the ingester's default)")
    parser.add_argument(
        "--in-process", action="store_true", help="write in this process (no child writer)"
    )
    options = parser.parse_args()
    child = not options.in_process
    now = time.time()
    with tempfile.TemporaryDirectory() as directory:
        log = Path(directory) / "access.log"
        log.write_bytes(b"".join(make_lines(options.lines, now)))
        measured = functools.partial(
            rate, log=log, count=options.lines, now=now, batch=options.batch, child=child
        )
        sqlite = measured(f"sqlite:///{Path(directory) / 'bench.sqlite'}")
        print(f"ingest {options.lines:,} lines, SQLite: {sqlite}", flush=True)
        if options.no_postgres:
            return
        if options.postgres:
            postgres = measured(options.postgres)
        else:
            try:
                with ThrowawayCluster() as cluster:
                    postgres = measured(cluster.create_database("bench"))
            except PostgresUnavailable as error:
                print(f"ingest {options.lines:,} lines, PostgreSQL: not measured ({error})")
                return
        print(f"ingest {options.lines:,} lines, PostgreSQL: {postgres}")


if __name__ == "__main__":
    main()
