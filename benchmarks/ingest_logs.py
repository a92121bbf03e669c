"""Ingest N combined-format lines (real pip and uv user agents) into SQLite and PostgreSQL.

Prints one line: lines/s on each engine. ``--lines N`` for a smaller run; PostgreSQL needs
``--postgres URL`` (skipped without it).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from wheelfarm.stats.logs import LogIngester
from wheelfarm.store.database import open_store

PIP = "pip/24.0 " + json.dumps(
    {
        "installer": {"name": "pip", "version": "24.0"},
        "python": "3.11.2",
        "implementation": {"name": "CPython", "version": "3.11.2"},
        "distro": {"name": "Debian GNU/Linux", "version": "12", "id": "bookworm"},
        "system": {"name": "Linux", "release": "6.1.0"},
        "cpu": "x86_64",
        "ci": None,
    }
)
UV = "uv/0.4.18 " + json.dumps(
    {
        "installer": {"name": "uv", "version": "0.4.18"},
        "python": "3.12.3",
        "implementation": {"name": "CPython", "version": "3.12.3"},
        "distro": {"name": "Ubuntu", "version": "24.04", "id": "noble"},
        "system": {"name": "Linux", "release": "6.8.0"},
        "cpu": "aarch64",
        "ci": True,
    }
)


def make_lines(count: int, now: float) -> list[bytes]:
    lines = []
    for i in range(count):
        at = now - (i * 86400 * 30 // count)
        stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(at))
        agent = (PIP if i % 2 else UV).replace('"', "\\x22")
        project = f"project-{i % 500}"
        if i % 3:
            path = f"/files/{project}/{project.replace('-', '_')}-1.{i % 7}-py3-none-any.whl"
        else:
            path = f"/simple/{project}/"
        client = f"10.{i % 200}.{i % 251}.{i % 13}"
        size = 1000 + i % 977
        line = f'{client} - - [{stamp}] "GET {path} HTTP/1.1" 200 {size} "-" "{agent}"\n'
        lines.append(line.encode())
    return lines


def rate(url: str, lines: list[bytes], now: float) -> float:
    engine = open_store(url)
    ingester = LogIngester(engine, b"b" * 32, now=now)
    started = time.perf_counter()
    ingester.feed(lines)
    ingester.flush()
    elapsed = time.perf_counter() - started
    engine.dispose()
    assert ingester.report.hits + ingester.report.duplicates == len(lines), ingester.report
    return len(lines) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--postgres", help="a PostgreSQL URL (an empty database)")
    options = parser.parse_args()
    now = time.time()
    lines = make_lines(options.lines, now)
    with tempfile.TemporaryDirectory() as directory:
        sqlite = rate(f"sqlite:///{Path(directory) / 'bench.sqlite'}", lines, now)
    shown = f"ingest {options.lines} lines: SQLite {sqlite:,.0f} lines/s"
    if options.postgres:
        shown += f", PostgreSQL {rate(options.postgres, lines, now):,.0f} lines/s"
    print(shown)


if __name__ == "__main__":
    main()
