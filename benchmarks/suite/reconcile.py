"""Reconcile from a distant upstream: wheelfarm's pooled page readers against bandersnatch's.

Both read the same projects from the same fake upstream (benchmarks/reconcile_pool.py's: a
create and two files a project, every page answered after 20 ms, the round trip to a distant
index), with the same number of readers: wheelfarm's follower its pool of page readers
(``reconcile_workers``, 8 by default), bandersnatch its ``workers`` (at most 10). wheelfarm
reads two pages a project (the PEP 691 page and the JSON API page), compares them with its
store and applies the differences; bandersnatch reads the JSON API page through its own mirror
loop and writes nothing (benchmarks/suite/bandersnatch_reads.py): its page reads alone, the
part of its sync that a reconcile is comparable to. So the figure is projects per second.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks.suite.measure import Measurement, NotMeasured, interleave, not_measured
from benchmarks.suite.tools import tool_venv
from wheelfarm.upstream.follow import DEFAULT_PAGE_WORKERS

__all__ = ["DistantSize", "measure_distant_reconcile"]

AREA = "following"
REPO = Path(__file__).resolve().parents[2]
#: bandersnatch refuses more workers than this.
BANDERSNATCH_MAX_WORKERS = 10


@dataclass(frozen=True)
class DistantSize:
    projects: int
    rounds: int
    #: Seconds before every page answer.
    delay: float = 0.02
    workers: int = DEFAULT_PAGE_WORKERS


@contextmanager
def _distant_upstream(projects: int, delay: float) -> Iterator[str]:
    """The fake upstream of benchmarks/reconcile_pool.py in its own process; yields its URL."""
    script = REPO / "benchmarks" / "reconcile_pool.py"
    process = subprocess.Popen(
        [sys.executable, str(script), "--serve", "--projects", str(projects),
         "--delay", str(delay)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    try:
        ready = process.stdout.readline().split() if process.stdout else []
        if ready[:1] != ["READY"]:
            raise RuntimeError(f"the distant fake upstream did not start: {ready}")
        yield ready[1]
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wheelfarm(base_url: str, size: DistantSize, scratch: Path) -> float:
    """A fresh store caught up with the changelog (not timed), then reconciled; projects/s."""
    from benchmarks.reconcile_pool import reconcile

    database = f"sqlite:///{tempfile.mkdtemp(dir=scratch)}/reconcile.sqlite"
    count, seconds = reconcile(base_url, size.workers, database)
    if count != size.projects:
        raise NotMeasured(f"wheelfarm reconciled {count} of {size.projects} projects")
    return count / seconds


def _bandersnatch(python: Path, base_url: str, size: DistantSize) -> float:
    """bandersnatch's page reads, in its own environment; projects/s."""
    names = [f"project-{number:06d}" for number in range(size.projects)]
    script = Path(__file__).with_name("bandersnatch_reads.py")
    output = subprocess.run(
        [str(python), str(script), base_url, str(size.workers), *names],
        check=False,
        capture_output=True,
        text=True,
    )
    if output.returncode:
        last = (output.stderr.strip().splitlines() or ["no output"])[-1]
        raise NotMeasured(f"bandersnatch failed: {last}")
    found = json.loads(output.stdout.strip().splitlines()[-1])
    if found["projects"] != size.projects:
        raise NotMeasured(f"bandersnatch read {found['projects']} of {size.projects} projects")
    return float(found["projects"]) / float(found["seconds"])


def measure_distant_reconcile(size: DistantSize) -> Measurement:
    """Projects per second, wheelfarm's reconcile against bandersnatch's reads, interleaved."""
    figure = (
        f"reconcile from a distant upstream ({size.delay * 1000:g} ms a page), "
        f"{size.projects:,} projects, {size.workers} readers each: wheelfarm reads 2 pages a "
        "project, diffs, applies; bandersnatch reads its 1 (JSON API), writes nothing"
    )
    try:
        if size.workers > BANDERSNATCH_MAX_WORKERS:
            raise NotMeasured(f"bandersnatch allows at most {BANDERSNATCH_MAX_WORKERS} workers")
        python = tool_venv("bandersnatch", ["bandersnatch"]) / "python"
    except NotMeasured as why:
        return not_measured(AREA, figure, "projects/s", "bandersnatch", str(why))
    with (
        tempfile.TemporaryDirectory(prefix="bench-distant-") as temp,
        _distant_upstream(size.projects, size.delay) as base_url,
    ):
        race = interleave(
            size.rounds,
            {
                "wheelfarm": lambda: _wheelfarm(base_url, size, Path(temp)),
                "bandersnatch": lambda: _bandersnatch(python, base_url, size),
            },
        )
    return race.row(AREA, figure, "projects/s", "wheelfarm", "bandersnatch")
