"""Failed builds on the master: triaged at intake, triaged again on demand, closed when dead.

:func:`triaged_log` runs at intake (:func:`wheelfarm.farm.builds.finish_build`): it reads the
category and the telling line from the log the builder sent (:mod:`wheelfarm.farm.triage`)
and appends the master's block, which says what was recorded, the category, and whether the
builder's footer was there (a log without one was cut off). :func:`retriage_builds` runs the
rules again over every stored failure, so a new rule reaches old builds. :func:`died_log` is
the log of a build whose builder went silent and sent none: the master's own header and
footer, so the log says the build died rather than nothing at all.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, func, select, update

from wheelfarm.builder.log_frame import BuildContext, frame_log
from wheelfarm.farm.stored_logs import compress_log
from wheelfarm.farm.triage import MASTER_MARKER, Triage, builder_part, triage
from wheelfarm.log_markers import LOG_END_MARKER, LOG_HEADER_MARKER
from wheelfarm.store.marks import mark_changed
from wheelfarm.store.schema import builds, jobs

__all__ = [
    "TRIAGED_STATUSES",
    "DiedBuild",
    "RetriageCount",
    "TriagedLog",
    "died_log",
    "retriage_builds",
    "triaged_log",
]

#: The build outcomes that are triaged (a deferred build's log says why the index lacked it).
TRIAGED_STATUSES = ("failed", "deferred")

_BATCH = 200  # builds read, triaged and written per round: their logs are up to a MiB each


@dataclass(frozen=True)
class TriagedLog:
    """A log as stored, with its triage (``category`` None for a build that did not fail)."""

    text: str
    category: str | None
    reason: str | None


def _master_block(recorded: str, found: Triage | None, complete: bool) -> str:
    lines = [MASTER_MARKER, f"recorded: {recorded}"]
    if found is not None:
        lines.append(f"category: {found.category}")
        if found.reason:
            lines.append(f"telling line: {found.reason}")
    if not complete:
        lines.append("note: the builder's log has no footer: it was cut off")
    return "\n".join(lines) + "\n"


def triaged_log(log: str, recorded: str, builder_reason: str | None) -> TriagedLog:
    """The log to store for a build the master records as ``recorded``: triaged when that is
    a failure, the master's block appended. The reason is the telling line when the rules
    found one, else ``builder_reason``."""
    text = builder_part(log)
    found = triage(text, builder_reason) if recorded in TRIAGED_STATUSES else None
    if text and not text.endswith("\n"):
        text += "\n"
    # A log the builder framed has a footer unless it was cut off (a log from before the
    # frame has neither).
    framed = text.startswith(f"{LOG_HEADER_MARKER}\n")
    complete = not framed or f"\n{LOG_END_MARKER}\n" in text
    block = _master_block(recorded, found, complete)
    if found is None:
        return TriagedLog(text + block, None, builder_reason)
    return TriagedLog(text + block, found.category, found.reason or builder_reason)


@dataclass(frozen=True)
class DiedBuild:
    """What the master knows of a build whose builder went silent."""

    project: str
    version: str
    target: str
    builder: str
    started_at: float


def died_log(build: DiedBuild, now: float, reason: str) -> TriagedLog:
    """The log of a build that died without sending one: it says so, with what is known
    (triaged as ``build-died``)."""
    unknown = "unknown (the builder sent no log)"
    context = BuildContext(
        project=build.project,
        version=build.version,
        target=build.target,
        builder=build.builder,
        distro=unknown,
        python=unknown,
        pip=unknown,
        isolation=unknown,
    )
    output = "[no output: the builder went silent before it reported this build]\n"
    framed = frame_log(
        context, output, build.started_at, max(0.0, now - build.started_at), "died", reason
    )
    return triaged_log(framed, "failed", reason)


@dataclass(frozen=True)
class RetriageCount:
    """What a re-triage did: builds read, and builds whose category or reason changed."""

    read: int
    changed: int


def _decompressed(data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return zlib.decompress(data).decode("utf-8", "replace")
    except zlib.error:
        return None  # a damaged log: nothing to read, nothing to rewrite


def retriage_builds(
    connection: Connection,
    *,
    progress: Callable[[int, int], object] = lambda done, total: None,
) -> RetriageCount:
    """Run the rules again over every stored failure with a log, in batches by id.

    A failed job whose latest build this is takes the new reason too; the projects whose
    categories changed are marked for publishing. ``progress(done, total)`` after each batch.
    """
    wanted = builds.c.status.in_(TRIAGED_STATUSES) & builds.c.log.is_not(None)
    total = int(connection.execute(select(func.count()).where(wanted)).scalar_one())
    read = changed = 0
    last = 0
    while True:
        rows = connection.execute(
            select(
                builds.c.id,
                builds.c.project,
                builds.c.version,
                builds.c.target,
                builds.c.status,
                builds.c.reason,
                builds.c.category,
                builds.c.log,
            )
            .where(wanted, builds.c.id > last)
            .order_by(builds.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        last = rows[-1].id
        touched: set[str] = set()
        for row in rows:
            read += 1
            text = _decompressed(row.log)
            if text is None:
                continue
            stored = triaged_log(text, row.status, row.reason)
            if (stored.category, stored.reason) == (row.category, row.reason):
                continue
            changed += 1
            touched.add(row.project)
            _store(connection, row.id, stored)
            _update_job(connection, row.id, row.project, row.version, row.target, stored.reason)
        mark_changed(connection, sorted(touched))
        progress(read, total)
    return RetriageCount(read, changed)


def _store(connection: Connection, build_id: int, stored: TriagedLog) -> None:
    log = compress_log(stored.text)
    connection.execute(
        update(builds)
        .where(builds.c.id == build_id)
        .values(
            category=stored.category,
            reason=stored.reason,
            log=log.data,
            log_bytes=log.size,
            log_stale=True,  # its published copy says the old category (store/marks.py)
        )
    )


def _update_job(
    connection: Connection,
    build_id: int,
    project: str,
    version: str,
    target: str,
    reason: str | None,
) -> None:
    """A failed job shows its latest build's reason: this one's, when it is the latest."""
    same = (builds.c.project == project, builds.c.version == version, builds.c.target == target)
    latest = connection.execute(select(func.max(builds.c.id)).where(*same)).scalar_one()
    if latest != build_id:
        return
    connection.execute(
        update(jobs)
        .where(
            jobs.c.project == project,
            jobs.c.version == version,
            jobs.c.target == target,
            jobs.c.state == "failed",  # JobState.FAILED (jobs imports this module)
        )
        .values(reason=reason)
    )
