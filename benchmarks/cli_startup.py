"""Benchmark: how long short commands take, each in a fresh process (median of N runs).

Prints wall time and CPU time (user + system of the child): on a shared machine the wall time
follows the load, the CPU time much less.

Commands that do not talk to the upstream should answer at once: ``--help``, a command's
``--help``, and ``targets list`` and ``builds`` on an existing data directory. With
``--against SRC`` the same commands run from another source tree too (e.g. a checkout of the
commit before the lazy imports), interleaved run by run, so both see the same machine load.
Prints one line per tree.

Bytecode is cached as an installed wheelfarm's is (pip compiles it at install): the children run
without ``PYTHONDONTWRITEBYTECODE`` and a first, uncounted run of each command writes the
``__pycache__`` files; otherwise every run would compile wheelfarm's sources again (about 0.1 s).

    python benchmarks/cli_startup.py [--runs 7] [--against /path/to/other/src]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COMMANDS = [
    ("--help", ["--help"]),
    ("builds --help", ["builds", "--help"]),
    ("targets list", ["targets", "list"]),
    ("builds", ["builds"]),
    ("builds --failed", ["builds", "--failed"]),
    ("stats", ["stats"]),
]


def run(src: Path, data_dir: Path, args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds for one fresh ``python -m wheelfarm ARGS`` from ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src), "WHEELFARM_DATA_DIR": str(data_dir)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "wheelfarm", *args],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=data_dir,
    )
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--against", type=Path, help="another src/ directory to compare")
    args = parser.parse_args()
    trees = {"this tree": ROOT / "src"}
    if args.against:
        trees["against"] = args.against.resolve()
    with tempfile.TemporaryDirectory() as scratch:
        # a store per tree: each at its own newest schema
        data_dirs = {tree: Path(scratch, str(i)) for i, tree in enumerate(trees)}
        for tree, src in trees.items():
            data_dirs[tree].mkdir()
            run(src, data_dirs[tree], ["targets", "add", "cp311-cp311-linux_armv7l"])
            for _, command in COMMANDS:  # writes the bytecode; not counted
                run(src, data_dirs[tree], command)
        times: dict[str, dict[str, list[tuple[float, float]]]] = {
            t: {c: [] for c, _ in COMMANDS} for t in trees
        }
        for _ in range(args.runs):
            for label, command in COMMANDS:
                for tree, src in trees.items():
                    times[tree][label].append(run(src, data_dirs[tree], command))
    for tree, by_command in times.items():
        figures = ", ".join(
            f"{label} {statistics.median(w for w, _ in runs):.2f} s "
            f"(CPU {statistics.median(c for _, c in runs):.2f} s)"
            for label, runs in by_command.items()
        )
        print(f"cli_startup ({tree}, median of {args.runs} fresh processes): {figures}")


if __name__ == "__main__":
    main()
