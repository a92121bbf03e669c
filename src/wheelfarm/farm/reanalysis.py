"""Analyse the system dependencies of stored wheels that never were analysed.

Builders analyse each wheel before they upload it (:mod:`wheelfarm.builder.sysdeps`), but
wheels published before that analysis existed, or uploaded by a builder that sent none, have
no analysis: their pages give no ``apt install`` line. ``wheelfarm dependencies --reanalyse``
reads each such wheel from the published directory and analyses it here, against this
machine's libraries or a target's root file system (``--root``), the way ``wheelfarm import``
does. ``build_files.analysed`` says which wheels are done, so the command can be stopped and
run again; a wheel that needs nothing has no rows in ``file_dependencies``, which is why the
flag exists at all.

Each batch is its own transaction: a long analysis never holds the store's write lock for
more than one batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import ColumnElement, Engine, and_, func, select

from wheelfarm.builder.libraries import SystemLibraries
from wheelfarm.builder.sysdeps import analyse_wheel
from wheelfarm.farm.dependencies import record_dependencies
from wheelfarm.store.marks import mark_changed
from wheelfarm.store.schema import build_files

__all__ = ["ReanalysisCount", "reanalyse_wheels"]

_BATCH = 50  # wheels per transaction


@dataclass(frozen=True)
class ReanalysisCount:
    """What a re-analysis did: wheels analysed, and wheels whose file was not found."""

    analysed: int
    missing: int


def reanalyse_wheels(
    engine: Engine,
    wheel_dir: Path,
    *,
    libraries: SystemLibraries | None = None,
    target: str | None = None,
    progress: Callable[[int, int], object] = lambda done, total: None,
) -> ReanalysisCount:
    """Analyse every stored wheel (of ``target``, when given) that has no analysis yet.

    A wheel whose file is missing from ``wheel_dir`` is counted and left as it is. The
    projects of analysed wheels are marked for publishing (their install lines may change).
    ``progress(done, total)`` after each batch.
    """
    wanted: ColumnElement[bool] = build_files.c.analysed.is_(False)
    if target is not None:
        wanted = and_(wanted, build_files.c.target == target)
    with engine.connect() as connection:
        total = int(connection.execute(select(func.count()).where(wanted)).scalar_one())
    analysed = missing = 0
    last = ""
    while True:
        with engine.begin() as connection:
            rows = connection.execute(
                select(build_files.c.filename, build_files.c.project)
                .where(wanted, build_files.c.filename > last)
                .order_by(build_files.c.filename)
                .limit(_BATCH)
            ).all()
            if not rows:
                break
            last = rows[-1].filename
            projects: set[str] = set()
            for row in rows:
                path = wheel_dir / row.project / row.filename
                if not path.is_file():
                    missing += 1
                    continue
                record_dependencies(connection, row.filename, analyse_wheel(path, libraries))
                projects.add(row.project)
                analysed += 1
            mark_changed(connection, sorted(projects))
        progress(analysed + missing, total)
    return ReanalysisCount(analysed, missing)
