"""Statistics: access-log ingestion against ``wc -l`` and a minimal ``json.loads`` loop.

The same file of combined-format lines (benchmarks/ingest_logs.py's: real pip and uv user
agents, whose JSON part is what linehaul reads) is read three ways: ``wheelfarm``'s
``LogIngester`` into a fresh SQLite store (parse, classify, hash the client, count once);
``wc -l`` (the disk and the page cache: nothing is faster); and a minimal Python loop that
only cuts each line's user-agent JSON out and ``json.loads`` it (the least a Python ingester
reading agents must do).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.ingest_logs import make_lines
from benchmarks.suite.measure import Measurement, NotMeasured, interleave
from wheelfarm.stats.logs import LogIngester
from wheelfarm.store.database import open_store

__all__ = ["StatisticsSize", "ingest_file", "measure_statistics", "write_log"]

AREA = "statistics"
SECRET = b"b" * 32


@dataclass(frozen=True)
class StatisticsSize:
    lines: int
    rounds: int


def write_log(path: Path, lines: int, now: float) -> None:
    """A combined-format access log of ``lines`` lines ending ``now``."""
    with path.open("wb") as log:
        log.writelines(make_lines(lines, now))


def ingest_file(path: Path, database: str, now: float) -> int:
    """wheelfarm's ingestion of ``path``; returns the lines it read.

    Not only the hits: the log, like a real one, holds lines ingestion reads and skips (a 404,
    a browser), and each is a line of the figure's work.
    """
    engine = open_store(database)
    try:
        ingester = LogIngester(engine, SECRET, now=now)
        with path.open("rb") as log:
            ingester.feed(log)
        ingester.flush()
        return ingester.report.lines
    finally:
        engine.dispose()


def _json_per_line(path: Path) -> int:
    count = 0
    with path.open("rb") as log:
        for line in log:
            count += 1
            start = line.find(b"{")
            if start < 0:  # a browser's agent: nothing to read
                continue
            agent = line[start : line.rindex(b"}") + 1]
            json.loads(agent.replace(b"\\x22", b'"'))
    return count


def _timed_rate(lines: int, run: Callable[[], int]) -> float:
    began = time.perf_counter()
    counted = run()
    seconds = time.perf_counter() - began
    if counted != lines:
        raise NotMeasured(f"counted {counted} of {lines} lines")
    return lines / seconds


def _wc(path: Path) -> int:
    output = subprocess.run(["wc", "-l", str(path)], check=True, capture_output=True, text=True)
    return int(output.stdout.split()[0])


def measure_statistics(size: StatisticsSize) -> list[Measurement]:
    """Lines per second: wheelfarm's ingestion against the two baselines, interleaved."""
    figure = f"access-log ingestion into SQLite, {size.lines:,} lines"
    now = time.time()
    with tempfile.TemporaryDirectory(prefix="bench-stats-") as temp:
        scratch = Path(temp)
        log = scratch / "access.log"
        write_log(log, size.lines, now)

        def ours() -> int:
            database = f"sqlite:///{tempfile.mkdtemp(dir=scratch)}/stats.sqlite"
            return ingest_file(log, database, now)

        race = interleave(
            size.rounds,
            {
                "wheelfarm": lambda: _timed_rate(size.lines, ours),
                "wc -l": lambda: _timed_rate(size.lines, lambda: _wc(log)),
                "json.loads per line": lambda: _timed_rate(size.lines, lambda: _json_per_line(log)),
            },
        )
    return [
        race.row(AREA, figure, "lines/s", "wheelfarm", "wc -l"),
        race.row(AREA, figure, "lines/s", "wheelfarm", "json.loads per line"),
    ]
