"""Scale: how the follower's, the regeneration's and log ingestion's costs grow with the work.

Each point runs in a fresh process, so its peak memory (the largest resident size of the
process or of any child it waited for, such as the follower's reader or the publisher's
workers) is its own; preparing the input (the fake upstream, the store, the log file) happens
outside that process. A point is one run, not a median: the sizes step by ten, so the growth
factor (time at ten times the work over time at the smaller size) reads as linear near 10 and
worse above it, well outside the noise of one run.

``python -m benchmarks.suite.scale KIND SIZE ARGUMENT`` is the worker a point runs in.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["KINDS", "ScalePoint", "measure_scale"]

REPO = Path(__file__).resolve().parents[2]
#: What each kind measures, and what its size counts.
KINDS = {
    "follow": ("changelog replay into SQLite", "events"),
    "regenerate": ("regeneration (write --all over the tree)", "wheels"),
    "ingest": ("access-log ingestion into SQLite", "lines"),
}


@dataclass(frozen=True)
class ScalePoint:
    kind: str
    size: int
    seconds: float
    peak_mb: float


def _peak_mb() -> float:
    """The larger of this process's high-water mark and its largest child's, in MB.

    Not ``RUSAGE_SELF``: Linux carries a process's maximum across ``execve``, so a worker
    started from a large parent would report the parent's size. ``VmHWM`` belongs to the
    address space, which ``execve`` replaces.
    """
    own_kib = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            own_kib = int(line.split()[1])
    children_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    return max(own_kib, children_kib) / 1024


def _work(kind: str, size: int, argument: str) -> float:
    """In the worker process: do one point's work; returns its seconds."""
    began = time.perf_counter()
    if kind == "follow":
        from benchmarks.suite.following import follow_wheelfarm

        database, changelog = argument.split(" ", 1)
        applied = follow_wheelfarm(database, changelog)
        if applied != size:
            raise SystemExit(f"applied {applied} of {size} events")
    elif kind == "regenerate":
        from benchmarks.suite.publishing import write_tree

        database, root = argument.split(" ", 1)
        return write_tree(database, Path(root))
    elif kind == "ingest":
        from benchmarks.suite.statistics import ingest_file

        database, log, now = argument.split(" ", 2)
        counted = ingest_file(Path(log), database, float(now))
        if counted != size:
            raise SystemExit(f"counted {counted} of {size} lines")
    else:
        raise SystemExit(f"unknown kind {kind!r}")
    return time.perf_counter() - began


def _point(kind: str, size: int, argument: str) -> ScalePoint:
    output = subprocess.run(
        [sys.executable, "-m", "benchmarks.suite.scale", kind, str(size), argument],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    found = json.loads(output.stdout.strip().splitlines()[-1])
    return ScalePoint(kind, size, float(found["seconds"]), float(found["peak_mb"]))


def _follow(size: int, scratch: Path) -> ScalePoint:
    from benchmarks.suite.upstream import fake_changelog

    with fake_changelog(size) as changelog:
        return _point("follow", size, f"sqlite:///{scratch}/follow-{size}.sqlite {changelog}")


def _regenerate(size: int, scratch: Path) -> ScalePoint:
    from benchmarks.suite.publishing import WHEELS_PER_PROJECT, write_tree
    from benchmarks.write_index import fill
    from wheelfarm.store.database import open_store

    database = f"sqlite:///{scratch}/publish-{size}.sqlite"
    engine = open_store(database)
    fill(engine, max(1, size // WHEELS_PER_PROJECT))
    engine.dispose()
    root = scratch / f"tree-{size}"
    write_tree(database, root)  # the tree the regeneration goes over
    return _point("regenerate", size, f"{database} {root}")


def _ingest(size: int, scratch: Path) -> ScalePoint:
    from benchmarks.suite.statistics import write_log

    now = time.time()
    log = scratch / f"access-{size}.log"
    write_log(log, size, now)
    return _point("ingest", size, f"sqlite:///{scratch}/stats-{size}.sqlite {log} {now}")


def measure_scale(sizes: Mapping[str, Sequence[int]]) -> list[ScalePoint]:
    """Each kind at each of its sizes, smallest first; each size's input removed after its point."""
    makers = {"follow": _follow, "regenerate": _regenerate, "ingest": _ingest}
    points = []
    for kind, kind_sizes in sizes.items():
        for size in sorted(kind_sizes):
            with tempfile.TemporaryDirectory(prefix=f"bench-scale-{kind}-") as temp:
                points.append(makers[kind](size, Path(temp)))
    return points


def main(argv: Sequence[str]) -> None:
    """The worker: one point, printed as JSON."""
    kind, size, argument = argv
    seconds = _work(kind, int(size), argument)
    print(json.dumps({"seconds": seconds, "peak_mb": _peak_mb()}))


if __name__ == "__main__":
    main(sys.argv[1:])
