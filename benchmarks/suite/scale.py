"""Scale: how the follower's, the regeneration's and log ingestion's costs grow with the work.

Each run of a point is a fresh process, so its peak memory (the largest resident size of the
process or of any child it waited for, such as the follower's reader or the publisher's
workers) is its own; preparing the input (the fake upstream, the store, the log file, the
tree) happens outside it. A point is the median of its runs (``rounds``), with the spread of
its times beside it; the sizes step by ten, so the growth factor (time at ten times the work
over time at the smaller size) reads as linear near 10 and worse above it.

The regeneration's unit is wheels, ten a project (benchmarks/write_index.py's store: 5 releases
built for 2 targets), as in the README's "100,000 projects, 1,000,000 wheels". Its runs measure
``write --all`` over an existing tree, what every start of ``wheelfarm up`` does: every project
loaded and rendered, only changed files replaced. That tree, about twenty files a project, is
written once by ``write_all`` into an empty directory and kept with its store in the suite's
cache (``tools.cache_dir()``), because creating two million files takes this disk longer than
the rest of the run; the first run at a size pays for it once. Before the measured runs one
unmeasured regeneration brings a kept tree up to date with the code that now renders it.

``python -m benchmarks.suite.scale KIND SIZE ARGUMENT`` is the worker a run happens in.
"""

from __future__ import annotations

import hashlib
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["KINDS", "ScalePoint", "measure_scale"]

REPO = Path(__file__).resolve().parents[2]
#: What each kind measures, and what its size counts.
KINDS = {
    "follow": ("changelog replay into SQLite", "events"),
    "regenerate": ("regeneration (write --all over an existing tree)", "wheels"),
    "ingest": ("access-log ingestion into SQLite", "lines"),
}


@dataclass(frozen=True)
class ScalePoint:
    """One size of one kind: the median time and peak memory of its runs, and their spread."""

    kind: str
    size: int
    seconds: float
    peak_mb: float
    low: float
    high: float
    runs: int


@dataclass(frozen=True)
class _Run:
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
    """In the worker process: do one run's work; returns its seconds."""
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
        read = ingest_file(Path(log), database, float(now))
        if read != size:
            raise SystemExit(f"read {read} of {size} lines")
    else:
        raise SystemExit(f"unknown kind {kind!r}")
    return time.perf_counter() - began


def _run(kind: str, size: int, argument: str) -> _Run:
    output = subprocess.run(
        [sys.executable, "-m", "benchmarks.suite.scale", kind, str(size), argument],
        cwd=REPO,
        check=False,
        capture_output=True,
        text=True,
    )
    if output.returncode:
        last = (output.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"the {kind} run at {size:,} failed ({output.returncode}): {last}")
    found = json.loads(output.stdout.strip().splitlines()[-1])
    return _Run(float(found["seconds"]), float(found["peak_mb"]))


def _point(kind: str, size: int, rounds: int, argument: Callable[[int], str]) -> ScalePoint:
    """``rounds`` runs, each with the argument made for it; their medians and spread."""
    runs = [_run(kind, size, argument(number)) for number in range(rounds)]
    seconds = [run.seconds for run in runs]
    return ScalePoint(
        kind,
        size,
        statistics.median(seconds),
        statistics.median(run.peak_mb for run in runs),
        min(seconds),
        max(seconds),
        len(runs),
    )


def _follow(size: int, rounds: int, scratch: Path) -> ScalePoint:
    from benchmarks.suite.upstream import fake_changelog

    with fake_changelog(size) as changelog:
        return _point(
            "follow", size, rounds, lambda n: f"sqlite:///{scratch}/follow-{n}.sqlite {changelog}"
        )


def _kept_tree_key() -> str:
    """What a kept tree depends on: the synthetic store's maker and the schema's migrations."""
    digest = hashlib.sha256((REPO / "benchmarks" / "write_index.py").read_bytes())
    versions = REPO / "src" / "wheelfarm" / "store" / "migrations" / "versions"
    for migration in sorted(versions.glob("*.py")):
        digest.update(migration.name.encode())
    return digest.hexdigest()[:12]


def kept_tree(wheels: int) -> tuple[str, Path]:
    """The store and the tree of ``wheels`` wheels kept in the cache, made first if missing.

    A half-made one (the run stopped while writing it) has no ``complete`` marker and is made
    again from the start.
    """
    from benchmarks.suite.publishing import WHEELS_PER_PROJECT, write_tree
    from benchmarks.suite.tools import cache_dir
    from benchmarks.write_index import fill
    from wheelfarm.store.database import open_store

    home = cache_dir() / "regenerate" / f"{wheels}-wheels-{_kept_tree_key()}"
    database = f"sqlite:///{home / 'store.sqlite'}"
    if not (home / "complete").is_file():
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        engine = open_store(database)
        fill(engine, max(1, wheels // WHEELS_PER_PROJECT))
        engine.dispose()
        write_tree(database, home / "tree")
        (home / "complete").write_text(f"{wheels} wheels\n")
    return database, home / "tree"


def _regenerate(size: int, rounds: int, scratch: Path) -> ScalePoint:
    from benchmarks.suite.publishing import write_tree

    database, root = kept_tree(size)
    write_tree(database, root)  # brings a kept tree up to date with today's templates
    return _point("regenerate", size, rounds, lambda n: f"{database} {root}")


def _ingest(size: int, rounds: int, scratch: Path) -> ScalePoint:
    from benchmarks.suite.statistics import write_log

    now = time.time()
    log = scratch / f"access-{size}.log"
    write_log(log, size, now)
    return _point(
        "ingest", size, rounds, lambda n: f"sqlite:///{scratch}/stats-{n}.sqlite {log} {now}"
    )


def measure_scale(
    sizes: Mapping[str, Sequence[int]], rounds: int, once_from: int | None = None
) -> list[ScalePoint]:
    """Each kind at each of its sizes, smallest first, ``rounds`` runs each (one from
    ``once_from`` up); each size's input is removed after its point (not the kept trees)."""
    makers = {"follow": _follow, "regenerate": _regenerate, "ingest": _ingest}
    points = []
    for kind, kind_sizes in sizes.items():
        for size in sorted(kind_sizes):
            runs = 1 if once_from is not None and size >= once_from else rounds
            with tempfile.TemporaryDirectory(prefix=f"bench-scale-{kind}-") as temp:
                points.append(makers[kind](size, runs, Path(temp)))
    return points


def main(argv: Sequence[str]) -> None:
    """The worker: one run, printed as JSON."""
    kind, size, argument = argv
    seconds = _work(kind, int(size), argument)
    print(json.dumps({"seconds": seconds, "peak_mb": _peak_mb()}))


if __name__ == "__main__":
    main(sys.argv[1:])
