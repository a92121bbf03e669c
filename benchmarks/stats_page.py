"""Benchmark: the ``/stats/`` page, from a SQLite store with a year of daily counts.

Synthesises, with bulk inserts, ``--projects`` projects (default 300) downloaded every day for
365 days, each day's downloads split over two installers, Pythons, distros and CPUs (about
3,300 rows a project), then times what ``up``'s publisher does every ``stats_page_seconds``:
reading the figures (:func:`wheelfarm.stats.figures.load_figures`) and drawing the page, its
seven matplotlib plots and ``/stats.json`` (:func:`wheelfarm.publish.stats_page.render_stats`),
the first draw (with matplotlib's import) and the next one apart. Prints one line.

    python benchmarks/stats_page.py [--projects 300]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from wheelfarm.publish.stats_page import render_stats  # noqa: E402
from wheelfarm.stats.figures import load_figures  # noqa: E402
from wheelfarm.store.bulk import insert_rows  # noqa: E402
from wheelfarm.store.database import open_store  # noqa: E402
from wheelfarm.store.schema import stats_daily  # noqa: E402

TODAY = 20_000
DAYS = 365
SHARES = {
    "installer": ("pip", "uv"),
    "python": ("3.11", "3.12"),
    "distro": ("Debian GNU/Linux 12", "Ubuntu 24.04"),
    "arch": ("x86_64", "aarch64"),
}


def _as_is(statement: object) -> object:
    return statement


def fill(database: str, projects: int) -> int:
    engine = open_store(database)
    rows = 0
    with engine.begin() as connection:
        for number in range(projects):
            name = f"project-{number}"
            batch = []
            for day in range(TODAY - DAYS + 1, TODAY + 1):
                hits = 1 + (number + day) % 7
                batch.append((day, "download", name, "total", "", hits))
                for dimension, (first, second) in SHARES.items():
                    batch.append((day, "download", name, dimension, first, hits - hits // 3))
                    if hits // 3:
                        batch.append((day, "download", name, dimension, second, hits // 3))
                if day % 5 == 0:
                    batch.append((day, "search", f"wanted-{number}", "total", "", 2))
            insert_rows(connection, stats_daily, batch, _as_is)
            rows += len(batch)
    engine.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=300)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        database = f"sqlite:///{directory}/stats.sqlite"
        rows = fill(database, arguments.projects)
        engine = open_store(database)
        started = time.perf_counter()
        with engine.connect() as connection:
            figures = load_figures(connection, TODAY)
        loaded = time.perf_counter()
        files = render_stats(figures)
        first = time.perf_counter()
        render_stats(figures)
        again = time.perf_counter()
        engine.dispose()
    size = sum(len(data) for data in files.values())
    print(
        f"stats page: {rows:,} daily rows ({arguments.projects} projects, {DAYS} days): "
        f"figures read in {loaded - started:.2f} s, drawn in {first - loaded:.2f} s "
        f"(with matplotlib's import), {again - first:.2f} s again; {len(files)} files, "
        f"{size / 1024:.0f} KiB"
    )


if __name__ == "__main__":
    main()
