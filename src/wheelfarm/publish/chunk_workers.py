"""Write chunks of projects for a full regeneration, here or in spawned worker processes.

Loading and rendering are CPU-bound, and each chunk's files are disjoint from every other
chunk's, so a regeneration shares its chunks among processes. What crosses the process boundary
is named: a :class:`ChunkJob` goes out (picklable, so workers can be spawned), a
:class:`ChunkResult` comes back.
"""

from __future__ import annotations

import gc
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import Connection, Engine

from wheelfarm.publish.blobs import Blobs
from wheelfarm.publish.existing import Existing
from wheelfarm.publish.loader import load_publications
from wheelfarm.publish.orphans import die_with_parent
from wheelfarm.publish.project_writer import write_project
from wheelfarm.publish.tree import Tree
from wheelfarm.publish.write_report import WriteReport
from wheelfarm.store.database import create_store_engine
from wheelfarm.store.marks import WrittenMark, mark_written

__all__ = ["MAX_WORKERS", "ChunkJob", "ChunkResult", "ChunkWriter", "chunk_writer", "record"]

MAX_WORKERS = 8


@dataclass(frozen=True)
class ChunkJob:
    """What a worker process needs to write chunks: picklable, so workers can be spawned."""

    url: str | None  # None: the store cannot be opened twice (in-memory SQLite)
    root: Path
    withdrawn: Path
    upstream_simple_url: str
    target_names: tuple[str, ...]

    @classmethod
    def of(
        cls, engine: Engine, tree: Tree, upstream_simple_url: str, target_names: tuple[str, ...]
    ) -> ChunkJob:
        return cls(
            _engine_url(engine), tree.root, tree.withdrawn, upstream_simple_url, target_names
        )


class ChunkResult(NamedTuple):
    """What writing a chunk did, and the marks to record for it in the store."""

    report: WriteReport
    marks: list[WrittenMark]  # only the projects whose write the store must note


def _engine_url(engine: Engine) -> str | None:
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return None
    return url.render_as_string(hide_password=False)


def _write_chunk(
    connection: Connection,
    tree: Tree,
    job: ChunkJob,
    chunk: list[str],
    existing: Existing,
    dense: bool,
) -> ChunkResult:
    report = WriteReport()
    publications = load_publications(
        connection,
        chunk,
        upstream_simple_url=job.upstream_simple_url,
        target_names=job.target_names,
        dense=dense,
    )
    blobs = Blobs(connection)
    for name in chunk:
        write_project(tree, publications[name], blobs, existing=existing, report=report)
    marks = [
        WrittenMark(p.name, p.serial, p.listing, p.stale_logs)
        for p in publications.values()
        if p.to_record
    ]
    return ChunkResult(report, marks)


ChunkWriter = Callable[[list[list[str]], bool], Iterator[ChunkResult]]
"""Writes chunks of sorted names, ``dense`` when each is every live name of its range."""


@contextmanager
def chunk_writer(
    engine: Engine, tree: Tree, job: ChunkJob, existing: Existing, workers: int
) -> Iterator[ChunkWriter]:
    """Writes chunks, yielding each one's result in order: here, or in ``workers`` spawned
    processes, started at once so that they import while the caller gets the work ready."""
    if workers < 2 or job.url is None:

        def write_here(chunks: list[list[str]], dense: bool) -> Iterator[ChunkResult]:
            with engine.connect() as connection:
                for chunk in chunks:
                    yield _write_chunk(connection, tree, job, chunk, existing, dense)

        yield write_here
        return
    # Spawned, not forked: the process that asks (wheelfarm up) runs threads.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start_worker, initargs=(job, existing)
    ) as pool:
        for _ in range(workers):
            pool.submit(_started)  # each submission starts a worker, if none is idle

        def write_there(chunks: list[list[str]], dense: bool) -> Iterator[ChunkResult]:
            return pool.map(_worker_chunk, chunks, [dense] * len(chunks))

        yield write_there


def _started() -> None:
    """A task that does nothing: submitting it starts a worker process."""


class _Worker(NamedTuple):
    engine: Engine
    tree: Tree
    job: ChunkJob
    existing: Existing


_worker: _Worker | None = None


def _start_worker(job: ChunkJob, existing: Existing) -> None:
    global _worker
    die_with_parent()  # a killed write --all leaves no worker writing the tree
    assert job.url is not None
    gc.disable()
    tree = Tree(job.root, job.withdrawn, durable=False)  # the parent syncs once at the end
    tree.siblings_complete = existing.siblings
    _worker = _Worker(create_store_engine(job.url), tree, job, existing)


def _worker_chunk(chunk: list[str], dense: bool) -> ChunkResult:
    assert _worker is not None
    with _worker.engine.connect() as connection:
        return _write_chunk(connection, _worker.tree, _worker.job, chunk, _worker.existing, dense)


def record(engine: Engine, marks: list[WrittenMark]) -> None:
    """Note a chunk's writes in the store (clearing dirty marks, keeping what the site lists)."""
    if not marks:
        return  # nothing was dirty and no listing changed: no transaction at all
    with engine.begin() as connection:
        mark_written(connection, marks)
