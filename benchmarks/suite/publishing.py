"""Publishing: the static tree written by wheelfarm and by a minimal script (the disk's limit).

A SQLite store of synthetic projects (benchmarks/write_index.py's: 5 releases each, built for
2 targets, so 10 wheels a project) is published by ``write_all`` twice per round: into an empty
tree (every page, gzip sibling and ``.metadata`` file created) and over an existing tree (the
regeneration every start of ``wheelfarm up`` does: everything rendered, only changed files
replaced). The minimal script writes the very same files, already in memory, each to a
temporary name renamed into place, then syncs once, as the regeneration does: no database, no
templates. What it takes is what the file system takes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.suite.measure import Measurement, interleave
from benchmarks.write_index import RELEASES, TARGETS, UPSTREAM, fill
from wheelfarm.publish.regenerate import write_all
from wheelfarm.publish.tree import Tree
from wheelfarm.store.database import open_store

__all__ = ["WHEELS_PER_PROJECT", "PublishingSize", "measure_publishing", "write_tree"]

AREA = "publishing"
WHEELS_PER_PROJECT = RELEASES * len(TARGETS)
BASE_URL = "https://index.example.org"


@dataclass(frozen=True)
class PublishingSize:
    projects: int
    rounds: int


def write_tree(database: str, root: Path) -> float:
    """``write_all`` from the store into ``root``; returns the seconds it took."""
    engine = open_store(database)
    try:
        tree = Tree(root / "www", root / "withdrawn")
        began = time.perf_counter()
        write_all(engine, tree, upstream_simple_url=UPSTREAM, base_url=BASE_URL)
        return time.perf_counter() - began
    finally:
        engine.dispose()


def _read_tree(root: Path) -> list[tuple[str, bytes]]:
    found = []
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory, name)
            found.append((str(path.relative_to(root)), path.read_bytes()))
    return found


def _write_minimally(files: list[tuple[str, bytes]], root: Path) -> float:
    """Each file to a temporary name, renamed into place; one sync at the end."""
    began = time.perf_counter()
    made: set[str] = set()
    for relative, data in files:
        path = os.path.join(root, relative)
        parent = os.path.dirname(path)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        temporary = path + ".tmp"
        with open(temporary, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    os.sync()
    return time.perf_counter() - began


def measure_publishing(size: PublishingSize) -> list[Measurement]:
    """Projects per second: the first write and the regeneration against the minimal script."""
    wheels = size.projects * WHEELS_PER_PROJECT
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as temp:
        scratch = Path(temp)
        database = f"sqlite:///{scratch / 'store.sqlite'}"
        engine = open_store(database)
        fill(engine, size.projects)
        engine.dispose()
        kept = scratch / "kept"
        write_tree(database, kept)
        files = _read_tree(kept / "www")

        def fresh() -> Path:
            return Path(tempfile.mkdtemp(dir=scratch))

        def first_write() -> float:
            root = fresh()
            seconds = write_tree(database, root)
            shutil.rmtree(root)
            return size.projects / seconds

        def minimal() -> float:
            root = fresh()
            seconds = _write_minimally(files, root)
            shutil.rmtree(root)
            return size.projects / seconds

        race = interleave(
            size.rounds,
            {
                "first write": first_write,
                "regeneration": lambda: size.projects / write_tree(database, kept),
                "minimal script": minimal,
            },
        )
    figure = f"{size.projects:,} projects, {wheels:,} wheels, {len(files):,} files"
    empty = f"write into an empty tree, {figure}"
    unchanged = f"regeneration over an unchanged tree (all rendered, none written), {figure}"
    return [
        race.row(AREA, empty, "projects/s", "first write", "minimal script"),
        race.row(AREA, unchanged, "projects/s", "regeneration", "minimal script"),
    ]
