"""Benchmark: regenerating the published index from a SQLite store of 100,000 projects.

Synthesises, with bulk inserts, 100,000 live projects of 5 releases each (one sdist upstream per
release), built for 2 targets: 1,000,000 wheels, each with its METADATA, a build (no log) and a
built job. Then, into a temporary directory:

1. the first write into an empty tree (every page and .metadata file is created);
2. a full regeneration (``write --all``) over that tree, as every start of ``wheelfarm up``
   does: every project is loaded and rendered, and only files whose bytes differ are replaced;
3. one project changed (a yank read from a page), published by the incremental writer as
   ``wheelfarm up``'s publisher runs it (with its clock: the simple root and home page, which
   sum up every project, follow in its next round, a second later).

Prints one line: the regeneration's rate, the change-to-published latency, and the first
write's rate.

    python benchmarks/write_index.py [--projects 100000]

With ``--against DIR`` (another checkout, e.g. a ``git worktree`` of an older commit) it
compares regenerations side by side instead, as a loaded machine needs: one long-lived process
per source tree (this one's ``src`` and DIR's ``src`` on its path), each filling its own store
and tree once, writing them once and regenerating once to warm up; then they take turns, a
regeneration each, ``--turns`` times, the first to go alternating. Each regeneration's wall
time and CPU time (the process and its workers) is printed to stderr with the load average;
the one line on stdout gives both sides' medians and the CPU difference.

    python benchmarks/write_index.py --projects 10000 --against ../old --turns 9

With ``--one-at-a-time`` only one side's store and tree exist at once (100,000 projects take
about 10 GB of tmpfs a side): each turn starts a side afresh, fills it, warms it up and times
``--runs`` regenerations, sides alternating.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from packaging.utils import NormalizedName  # noqa: E402
from sqlalchemy import Engine, Table  # noqa: E402

from wheelfarm.publish.regenerate import write_all  # noqa: E402
from wheelfarm.publish.tree import Tree  # noqa: E402
from wheelfarm.store.bulk import insert_rows  # noqa: E402
from wheelfarm.store.changes import Changes, write_changes  # noqa: E402
from wheelfarm.store.database import open_store  # noqa: E402
from wheelfarm.store.schema import (  # noqa: E402
    build_files,
    builds,
    files,
    index_projects,
    jobs,
    projects,
    releases,
    targets,
)

TARGETS = ("cp311-cp311-linux_aarch64", "cp311-cp311-linux_armv7l")
RELEASES = 5
UPSTREAM = "https://index.example.org/simple/"
KEY = 1_700_000_000 << 31
#: Columns the synthetic rows leave out: their values when not None.
DEFAULTS = {
    "build_number": 0,
    "analysed": True,
    "removed_key": 0,
    "quarantine_key": 0,
    "unserved": False,
    "log_stale": False,
}


def _as_is(statement: object) -> object:
    return statement


def _row(table: Table, **values: object) -> tuple[object, ...]:
    """``values`` in ``table``'s column order (what insert_rows takes), the rest defaulted."""
    return tuple(values.get(c.name, DEFAULTS.get(c.name)) for c in table.c)


def fill(engine: Engine, count: int) -> int:
    """Insert the synthetic store; returns the number of wheels."""
    wheels = 0
    with engine.begin() as connection:
        target_rows = [_row(targets, name=t, platforms=t.rsplit("-", 1)[1]) for t in TARGETS]
        insert_rows(connection, targets, target_rows, _as_is)
        build_id = 0
        for start in range(0, count, 10_000):
            rows: dict[str, list[tuple[object, ...]]] = {
                "projects": [],
                "releases": [],
                "files": [],
                "builds": [],
                "build_files": [],
                "jobs": [],
                "index_projects": [],
            }
            for number in range(start, min(start + 10_000, count)):
                name = f"project-{number:06d}"
                module = name.replace("-", "_")
                summary = f"Summary of {name}"
                rows["projects"].append(
                    _row(
                        projects,
                        name=name,
                        live_key=KEY,
                        registered_key=KEY,
                        registered_name=name,
                        seen_key=KEY,
                        seen_name=name,
                        quarantined=False,
                        summary=summary,
                        last_serial=1,
                        synced_serial=1,
                        touched_key=KEY,
                        status_key=0,  # no status marker (PEP 792) read: active
                    )
                )
                rows["index_projects"].append(
                    _row(
                        index_projects,
                        name=name,
                        serial=number + 1,
                        dirty=False,
                        listed=f"{name}\n",
                    )
                )
                for release in range(RELEASES):
                    version = f"{release}.{number % 7}.0"
                    rows["releases"].append(
                        (name, version, KEY, 0, 0, False, None, 0, False, False)
                    )
                    rows["files"].append(
                        (
                            name,
                            f"{module}-{version}.tar.gz",
                            version,
                            KEY,
                            0,
                            "source",
                            "0" * 64,
                            12_345,
                            f"2023-0{release + 1}-01T00:00:00.000000Z",
                            ">=3.8",
                        )
                    )
                    for target in TARGETS:
                        build_id += 1
                        filename = f"{module}-{version}-cp311-cp311-{target.rsplit('-', 1)[1]}.whl"
                        metadata = (
                            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                            f"Requires-Python: >=3.8\nRequires-Dist: attrs>=22\n\n"
                            f"{name} does things.\n"
                        ).encode()
                        rows["builds"].append(
                            _row(
                                builds,
                                id=build_id,
                                project=name,
                                version=version,
                                target=target,
                                builder="b1",
                                started_at=1.7e9,
                                duration=30.0,
                                status="built",
                            )
                        )
                        rows["build_files"].append(
                            _row(
                                build_files,
                                filename=filename,
                                build_id=build_id,
                                project=name,
                                version=version,
                                target=target,
                                sha256=hashlib.sha256(filename.encode()).hexdigest(),
                                size=100_000 + build_id % 1000,
                                tags=f"cp311-cp311-{target.rsplit('-', 1)[1]}",
                                requires_python=">=3.8",
                                requires_dist=json.dumps(["attrs>=22"]),
                                metadata=metadata,
                                metadata_sha256=hashlib.sha256(metadata).hexdigest(),
                            )
                        )
                        rows["jobs"].append(
                            _row(
                                jobs,
                                project=name,
                                version=version,
                                target=target,
                                state="built",
                                urgent=False,
                                priority=0,
                                attempts=1,
                                updated_at=1.7e9,
                            )
                        )
                        wheels += 1
            for table in (projects, releases, files, builds, build_files, jobs, index_projects):
                insert_rows(connection, table, rows[table.name], _as_is)
    return wheels


def _write(engine: Engine, tree: Tree, workers: int | None = None) -> None:
    write_all(
        engine,
        tree,
        upstream_simple_url=UPSTREAM,
        base_url="https://x.example.org",
        workers=workers,
    )


def alone(projects: int) -> None:
    """The default run: first write, regeneration, one project's publication; one line."""
    # Here, not at the top: --against runs this file over older trees, which lack SiteClock.
    from wheelfarm.publish.incremental import SiteClock, publish_dirty

    with tempfile.TemporaryDirectory() as scratch:
        engine = open_store(f"sqlite:///{Path(scratch) / 'store.sqlite'}")
        wheels = fill(engine, projects)
        tree = Tree(Path(scratch) / "www", Path(scratch) / "withdrawn")
        began = time.perf_counter()
        _write(engine, tree)
        first = time.perf_counter() - began
        began = time.perf_counter()
        _write(engine, tree)
        regeneration = time.perf_counter() - began

        changes = Changes()
        name = NormalizedName(f"project-{projects // 2:06d}")
        changes.release(name, f"1.{(projects // 2) % 7}.0").set_yank(KEY + 10, True, "bad")
        changed = time.perf_counter()
        with engine.begin() as connection:
            write_changes(connection, changes)
        report = publish_dirty(
            engine, tree, upstream_simple_url=UPSTREAM, base_url="x", clock=SiteClock()
        )
        latency = (time.perf_counter() - changed) * 1000
        assert report.changed == [name], report.changed
        engine.dispose()
    print(
        f"full regeneration: {projects / regeneration:,.0f} projects/s "
        f"({projects:,} projects, {wheels:,} files, {regeneration:.1f} s); "
        f"one project published {latency:.0f} ms after its change; "
        f"first write into an empty tree: {projects / first:,.0f} projects/s "
        f"({first:.1f} s)"
    )


def _cpu() -> float:
    """CPU seconds of this process and its reaped children (a regeneration's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def serve(projects: int, scratch: str, workers: int) -> None:
    """One side of --against: fill, write, warm up, then regenerate once per line on stdin,
    answering each with a JSON line of its wall and CPU seconds."""
    with tempfile.TemporaryDirectory(dir=scratch) as directory:
        engine = open_store(f"sqlite:///{Path(directory) / 'store.sqlite'}")
        fill(engine, projects)
        tree = Tree(Path(directory) / "www", Path(directory) / "withdrawn")
        _write(engine, tree, workers)
        _write(engine, tree, workers)  # the warm-up: the tree's pages and the store's cache
        code = str(Path(sys.modules[write_all.__module__].__file__ or "?").parents[2])
        print(json.dumps({"ready": True, "code": code}), flush=True)
        for _ in sys.stdin:
            cpu, wall = _cpu(), time.perf_counter()
            _write(engine, tree, workers)
            wall, cpu = time.perf_counter() - wall, _cpu() - cpu
            print(json.dumps({"wall": wall, "cpu": cpu}), flush=True)
        engine.dispose()


class _Side:
    """A long-lived process regenerating with one source tree's code."""

    def __init__(self, label: str, source: Path, args: argparse.Namespace) -> None:
        self.label = label
        self.walls: list[float] = []
        self.cpus: list[float] = []
        environment = {**os.environ, "PYTHONPATH": str(source / "src")}
        command = [sys.executable, str(Path(__file__).resolve()), "--serve"]
        command += ["--projects", str(args.projects), "--scratch", args.scratch]
        command += ["--workers", str(args.workers)]
        self.process = subprocess.Popen(
            command, env=environment, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def ready(self) -> None:
        """Wait until it has filled, written and warmed up."""
        code = self._answer()["code"]
        print(f"{self.label}: the code of {code}, ready", file=sys.stderr, flush=True)

    def _answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"{self.label}: its process ended ({self.process.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def run(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        answer = self._answer()
        self.walls.append(answer["wall"])
        self.cpus.append(answer["cpu"])
        load = os.getloadavg()[0]
        print(
            f"{self.label}: wall {answer['wall']:.2f} s, CPU {answer['cpu']:.2f} s "
            f"(load average {load:.1f})",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()


def against(args: argparse.Namespace) -> None:
    """Regenerations of this tree's code and of ``args.against``'s, taking turns."""
    sources = {"this": ROOT, "against": Path(args.against).resolve()}
    if not (sources["against"] / "src" / "wheelfarm").is_dir():
        raise SystemExit(f"--against {args.against}: no src/wheelfarm there")
    runs: dict[str, _Side] = {}
    if args.one_at_a_time:
        for turn in range(args.turns):
            for label in ("this", "against") if turn % 2 else ("against", "this"):
                side = _Side(label, sources[label], args)
                side.ready()
                for _ in range(args.runs):
                    side.run()
                side.close()
                known = runs.setdefault(label, side)
                if known is not side:
                    known.walls += side.walls
                    known.cpus += side.cpus
    else:
        runs = {label: _Side(label, source, args) for label, source in sources.items()}
        for side in runs.values():  # both fill at once
            side.ready()
        for turn in range(args.turns):
            for label in ("this", "against") if turn % 2 else ("against", "this"):
                runs[label].run()
        for side in runs.values():
            side.close()
    this, old = runs["this"], runs["against"]
    cpu_this, cpu_old = statistics.median(this.cpus), statistics.median(old.cpus)
    print(
        f"regeneration of {args.projects:,} projects, median of {len(this.cpus)} runs a side: "
        f"this tree CPU {cpu_this:.2f} s, wall {statistics.median(this.walls):.2f} s; "
        f"{args.against} CPU {cpu_old:.2f} s, wall {statistics.median(old.walls):.2f} s; "
        f"CPU {100 * (cpu_this / cpu_old - 1):+.1f}%"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--projects", type=int, default=100_000)
    parser.add_argument("--against", help="another checkout to regenerate with, side by side")
    parser.add_argument("--turns", type=int, default=5, help="with --against: turns a side")
    parser.add_argument("--runs", type=int, default=2, help="with --one-at-a-time: a turn's runs")
    parser.add_argument("--one-at-a-time", action="store_true", help="one side's tree at once")
    parser.add_argument("--workers", type=int, default=2, help="with --against")
    parser.add_argument("--scratch", default=tempfile.gettempdir(), help="where trees are made")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.projects, args.scratch, args.workers)
    elif args.against:
        against(args)
    else:
        alone(args.projects)


if __name__ == "__main__":
    main()
