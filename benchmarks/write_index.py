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
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from packaging.utils import NormalizedName  # noqa: E402
from sqlalchemy import Engine, Table  # noqa: E402

from wheelfarm.publish.incremental import SiteClock, publish_dirty  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--projects", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        engine = open_store(f"sqlite:///{Path(scratch) / 'store.sqlite'}")
        wheels = fill(engine, args.projects)
        tree = Tree(Path(scratch) / "www", Path(scratch) / "withdrawn")
        began = time.perf_counter()
        write_all(engine, tree, upstream_simple_url=UPSTREAM, base_url="https://x.example.org")
        first = time.perf_counter() - began
        began = time.perf_counter()
        write_all(engine, tree, upstream_simple_url=UPSTREAM, base_url="https://x.example.org")
        regeneration = time.perf_counter() - began

        changes = Changes()
        name = NormalizedName(f"project-{args.projects // 2:06d}")
        changes.release(name, f"1.{(args.projects // 2) % 7}.0").set_yank(KEY + 10, True, "bad")
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
        f"full regeneration: {args.projects / regeneration:,.0f} projects/s "
        f"({args.projects:,} projects, {wheels:,} files, {regeneration:.1f} s); "
        f"one project published {latency:.0f} ms after its change; "
        f"first write into an empty tree: {args.projects / first:,.0f} projects/s "
        f"({first:.1f} s)"
    )


if __name__ == "__main__":
    main()
