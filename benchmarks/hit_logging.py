"""Benchmark: what recording hits costs the built-in server, in requests per second.

Two ``wheelfarm serve`` processes serve the same tree of PROJECTS projects (simple pages and
wheel files of 20 KB): one records hits into its SQLite store, the other runs with
``--no-stats``. ``wrk`` (64 connections) loads them in turn, ROUNDS rounds each way, the order
swapped every round so a busy moment of the machine falls on both; every other request is a
wheel download, the rest pip's fetches of simple pages, with pip's user agent: each is a hit.
The recorder's process runs at ``nice`` 10: under the load its hits may wait, and it writes
them when it gets the CPU. So after the last round the benchmark waits until the
store's count stops growing, and prints how long that took (the catch-up), the hits counted
beside the requests wrk made, and the hits the recorder dropped (its own count, logged when the
server stops): a recorder that kept up by dropping hits, or by never writing them, shows. On a
machine shared with other work the requests per second vary by tens of per cent from one round
to the next, and two equal servers measured from -9 % to +14 % apart (``--control``), so the
server's CPU time per request, read from /proc, is printed beside them (steadier, but two equal
servers still measured up to 5 % apart), with the median of the rounds' pairs and the load
average; and the CPU time per hit of the recorder's process, the catch-up included.
Prints one line.

    python benchmarks/hit_logging.py [--duration 5] [--rounds 6] [--projects 200] [--control]

``--control`` runs both servers unrecorded, to show how far apart two equal servers measure.

Needs wrk (``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

import psutil
from sqlalchemy import create_engine, func, select

from wheelfarm.store.schema import stats_daily

PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01"
)
PIP_AGENT = "pip/24.0 " + json.dumps(
    {
        "ci": None,
        "cpu": "aarch64",
        "distro": {"id": "bookworm", "name": "Debian GNU/Linux", "version": "12"},
        "implementation": {"name": "CPython", "version": "3.11.2"},
        "installer": {"name": "pip", "version": "24.0"},
        "python": "3.11.2",
        "system": {"name": "Linux", "release": "6.1.0"},
    },
    separators=(",", ":"),
    sort_keys=True,
)
WHEEL_BYTES = 20_000


def write_tree(www: Path, projects: int) -> list[str]:
    """A published tree: per project a simple page and one wheel; the wheels' paths."""
    wheels = []
    for i in range(projects):
        name = f"project-{i:04d}"
        filename = f"{name.replace('-', '_')}-1.0-py3-none-any.whl"
        files = www / "files" / name
        files.mkdir(parents=True)
        (files / filename).write_bytes(bytes(i % 251 for i in range(WHEEL_BYTES)))
        page = www / "simple" / name
        page.mkdir(parents=True)
        link = f'<a href="/files/{name}/{filename}">{filename}</a>'
        (page / "index.html").write_text(
            f"<!DOCTYPE html><html><body><h1>Links for {name}</h1>{link}</body></html>\n"
        )
        files_json = [{"filename": filename, "url": f"/files/{name}/{filename}", "hashes": {}}]
        (page / "index.json").write_text(
            json.dumps({"meta": {"api-version": "1.1"}, "name": name, "files": files_json})
        )
        wheels.append(f"/files/{name}/{filename}")
    (www / "404.html").write_text("<!DOCTYPE html><title>Not found</title>\n")
    return wheels


def wrk_script(path: Path, wheels: list[str]) -> None:
    """Every other request a wheel, the others the simple page of the same project."""
    listed = ", ".join(f'"{wheel}"' for wheel in wheels)
    agent = PIP_AGENT.replace("\\", "\\\\").replace('"', '\\"')
    path.write_text(
        f"local wheels = {{{listed}}}\n"
        "local i = 0\n"
        f'wrk.headers["Accept"] = "{PIP_ACCEPT}"\n'
        f'wrk.headers["User-Agent"] = "{agent}"\n'
        "request = function()\n"
        "  i = i + 1\n"
        "  local wheel = wheels[(math.floor(i / 2) % #wheels) + 1]\n"
        "  if i % 2 == 0 then return wrk.format('GET', wheel) end\n"
        "  local project = string.match(wheel, '^/files/([^/]+)/')\n"
        "  return wrk.format('GET', '/simple/' .. project .. '/')\n"
        "end\n"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    www: Path, data_dir: Path, stats: bool, log: IO[bytes]
) -> tuple[subprocess.Popen[bytes], int]:
    """``wheelfarm -v serve`` (its log, the recorder's counts at the end, into ``log``)."""
    port = free_port()
    env = {
        **os.environ,
        "WHEELFARM_UPSTREAM": "https://index.example.org/simple/",
        "WHEELFARM_CONFIG": os.devnull,
        "WHEELFARM_DATA_DIR": str(data_dir),
        "COLUMNS": "1000",  # the log's lines unwrapped
    }
    command = [sys.executable, "-m", "wheelfarm", "-v", "serve", "--root", str(www)]
    command += ["--host", "127.0.0.1", "--port", str(port)] + ([] if stats else ["--no-stats"])
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"wheelfarm serve exited with status {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"wheelfarm serve did not listen on port {port}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=20)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds(pid: int) -> float:
    """CPU time so far of a process's children that run (the recorder's process)."""
    total = 0.0
    for child in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = child.cpu_times()
            total += times.user + times.system
    return total


def load(port: int, script: Path, duration: int) -> tuple[int, float]:
    """(requests made, seconds taken) of one wrk run."""
    command = ["wrk", "-t2", "-c64", f"-d{duration}s", "--timeout", "30s", "-s", str(script)]
    result = subprocess.run(
        [*command, f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True
    )
    if "Non-2xx" in result.stdout or "Socket errors" in result.stdout:
        raise SystemExit(f"wrk saw errors on port {port}:\n{result.stdout}")
    found = re.search(r"(\d+) requests in ([\d.]+)(m?s)", result.stdout)
    if found is None:
        raise SystemExit(f"no request count in wrk's output:\n{result.stdout}")
    seconds = float(found[2]) / (1000 if found[3] == "ms" else 1)
    return int(found[1]), seconds


def recorded(data_dir: Path) -> int:
    """Hits counted in the store: downloads and searches, all dimension ``total``."""
    engine = create_engine(f"sqlite:///{data_dir / 'wheelfarm.sqlite'}")
    try:
        with engine.connect() as connection:
            query = select(func.coalesce(func.sum(stats_daily.c.hits), 0))
            return int(connection.execute(query.where(stats_daily.c.dimension == "total")).one()[0])
    finally:
        engine.dispose()


def catch_up(data_dir: Path, served: int, patience: float) -> tuple[int, float]:
    """Wait until the store's count of hits stops growing: (the count, seconds from now to
    its last growth). Done when it reached ``served`` and held 3 s, or held ``patience``."""
    started = time.monotonic()
    count, grown = recorded(data_dir), started
    while True:
        time.sleep(0.5)
        now, found = time.monotonic(), recorded(data_dir)
        if found != count:
            count, grown = found, now
        elif now - grown >= (3 if count >= served else patience):
            return count, grown - started


def recorder_counts(log: Path) -> tuple[int, int, int]:
    """(queued, written, dropped) as the recorder logged them when its server stopped."""
    found = re.search(
        r"hit recorder: (\d+) requests queued, (\d+) hits written, (\d+) dropped", log.read_text()
    )
    if found is None:
        raise SystemExit(f"the recording server logged no counts:\n{log.read_text()}")
    return int(found[1]), int(found[2]), int(found[3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds of load per round")
    parser.add_argument("--rounds", type=int, default=6, help="rounds with and without")
    parser.add_argument("--projects", type=int, default=200)
    parser.add_argument(
        "--control",
        action="store_true",
        help="neither server records: how far apart two equal servers measure (the noise)",
    )
    parser.add_argument(
        "--patience", type=float, default=120, help="seconds the count may stand still"
    )
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk (Debian/Ubuntu), then run again")
    totals = {True: [0, 0.0, 0.0], False: [0, 0.0, 0.0]}  # requests, seconds, CPU seconds
    pairs: list[float] = []  # each round's cost in req/s, %
    recorder_cpu = 0.0  # the recording server's children (its recorder process)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="hit-logging-bench-") as temp:
        base = Path(temp)
        wheels = write_tree(base / "www", options.projects)
        script = base / "mix.lua"
        wrk_script(script, wheels)
        logs = {stats: base / f"serve-{stats}.log" for stats in (True, False)}
        with logs[True].open("wb") as on_log, logs[False].open("wb") as off_log:
            servers = {
                stats: start_server(
                    base / "www", base / f"data-{stats}", stats and not options.control, log
                )
                for stats, log in ((True, on_log), (False, off_log))
            }
            try:
                for round_ in range(options.rounds):
                    rates = {}
                    for stats in (True, False) if round_ % 2 == 0 else (False, True):
                        process, port = servers[stats]
                        cpu = cpu_seconds(process.pid)
                        children = children_cpu_seconds(process.pid)
                        made, seconds = load(port, script, options.duration)
                        totals[stats][0] += made
                        totals[stats][1] += seconds
                        totals[stats][2] += cpu_seconds(process.pid) - cpu
                        recorder_cpu += children_cpu_seconds(process.pid) - children
                        rates[stats] = made / seconds
                    pairs.append((rates[False] - rates[True]) / rates[False] * 100)
                load_after = os.getloadavg()[0]
                served = int(totals[True][0])
                process = servers[True][0]
                children = children_cpu_seconds(process.pid)
                counted, caught_up = 0, 0.0
                if not options.control:
                    counted, caught_up = catch_up(base / "data-True", served, options.patience)
                recorder_cpu += children_cpu_seconds(process.pid) - children
            finally:
                for process, _port in servers.values():
                    stop(process)
        queued, written, dropped = (0, 0, 0) if options.control else recorder_counts(logs[True])
    with_rate, without_rate = (totals[s][0] / totals[s][1] for s in (True, False))
    cost = (without_rate - with_rate) / without_rate * 100
    with_cpu, without_cpu = (totals[s][2] / totals[s][0] * 1e6 for s in (True, False))
    line = (
        f"hit logging, built-in server, wheels and simple pages, 64 connections, "
        f"{options.rounds} rounds of {options.duration} s, load average {load_before:.1f} to "
        f"{load_after:.1f}: on {with_rate:,.0f} req/s, off {without_rate:,.0f} req/s, cost "
        f"{cost:.1f} % (median of the rounds {statistics.median(pairs):.1f} %); CPU per "
        f"request on {with_cpu:.0f} us, off {without_cpu:.0f} us, cost "
        f"{(with_cpu - without_cpu) / without_cpu * 100:.1f} %"
    )
    if options.control:
        print(f"{line} (control: neither server records)")
        return
    print(
        f"{line}; the recorder's process {recorder_cpu / max(written, 1) * 1e6:.1f} us a hit; "
        f"hits counted {counted:,} of {served:,} requests ({queued:,} queued, {written:,} "
        f"written, {dropped:,} dropped), caught up {caught_up:.1f} s after the load"
    )


if __name__ == "__main__":
    main()
