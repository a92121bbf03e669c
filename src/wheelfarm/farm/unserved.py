"""Targets no builder serves: pending jobs whose target's builders have all gone quiet.

A job waits until a builder of its target claims it; if none is running (never set up, or
switched off), the job stays pending for ever and nothing said why. This module finds such
targets so ``wheelfarm builds`` can say, in one line each, how many jobs wait and how long ago a
builder was last seen (any authenticated request sets ``builders.last_seen``).

The published pages are static, and a target becomes unserved by time passing, with no change
to any project: :func:`refresh_unserved` (run by the publisher) keeps ``targets.unserved`` as
its last finding, and when a target's flag changes it marks the projects with pending jobs for
it, so their pages are written again with the note added or taken away. The home page and the
project pages read the flags (:func:`shown_unserved`), so they agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, func, select, update

from wheelfarm.farm.jobs import JobState
from wheelfarm.store.marks import mark_changed
from wheelfarm.store.schema import builders, jobs, targets

__all__ = [
    "UNSERVED_SILENCE_SECONDS",
    "UnservedTarget",
    "describe_silence",
    "refresh_unserved",
    "shown_unserved",
    "unserved_targets",
]

#: The default of the ``builder_silence_minutes`` setting, in seconds.
UNSERVED_SILENCE_SECONDS = 600.0


@dataclass(frozen=True)
class UnservedTarget:
    """A target with pending jobs and no builder seen within the silence allowed."""

    target: str
    pending: int
    last_seen: float | None  # when one of its builders was last seen; None: never

    def describe(self, now: float) -> str:
        """``cp311-cp311-linux_armv7l: 12 jobs pending, no builder seen for 3 h``."""
        jobs_word = "job" if self.pending == 1 else "jobs"
        if self.last_seen is None:
            since = "no builder has ever said hello for it"
        else:
            since = f"no builder seen for {describe_silence(now - self.last_seen)}"
        return f"{self.target}: {self.pending} {jobs_word} pending, {since}"

    def describe_since(self) -> str:
        """``...: 12 jobs pending, no builder seen since 2026-11-29 06:00 UTC``: true until the
        page that shows it is written again."""
        jobs_word = "job" if self.pending == 1 else "jobs"
        if self.last_seen is None:
            since = "no builder has ever said hello for it"
        else:
            when = datetime.fromtimestamp(self.last_seen, UTC).strftime("%Y-%m-%d %H:%M UTC")
            since = f"no builder seen since {when}"
        return f"{self.target}: {self.pending} {jobs_word} pending, {since}"

    def page_words(self) -> str:
        """What a project page says beside a build waiting for it: ``no builder for this
        target seen since 2026-11-29 06:00 UTC``; true until the target is served again."""
        if self.last_seen is None:
            return "no builder for this target has ever said hello"
        when = datetime.fromtimestamp(self.last_seen, UTC).strftime("%Y-%m-%d %H:%M UTC")
        return f"no builder for this target seen since {when}"


def describe_silence(seconds: float) -> str:
    """A length of time in its largest whole unit: ``45 min``, ``3 h``, ``2 d``."""
    minutes = int(max(seconds, 0) // 60)
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} d"


def unserved_targets(
    connection: Connection, *, now: float, silence_seconds: float
) -> list[UnservedTarget]:
    """Targets with pending jobs whose builders were all last seen more than ``silence_seconds``
    ago (or never), by name."""
    pending = connection.execute(
        select(jobs.c.target, func.count())
        .where(jobs.c.state == JobState.PENDING.value)
        .group_by(jobs.c.target)
    ).all()
    seen = dict(
        connection.execute(
            select(builders.c.target, func.max(builders.c.last_seen))
            .where(builders.c.target.is_not(None))
            .group_by(builders.c.target)
        ).all()
    )
    found = []
    for target, count in sorted(pending):
        last = seen.get(target)
        if last is None or now - last > silence_seconds:
            found.append(UnservedTarget(target, int(count), last))
    return found


def refresh_unserved(
    connection: Connection, *, now: float, silence_seconds: float
) -> tuple[str, ...]:
    """Flag the targets unserved now (and unflag the others); mark the projects with pending
    jobs for each target whose flag changed. Returns those targets, by name.

    A removed target's jobs stay (docs/farm.md, Known gaps) but it has no flag and no column
    on the pages: it is left out, or its projects would be marked again at every look.
    """
    configured = dict(connection.execute(select(targets.c.name, targets.c.unserved)).all())
    found = {
        target.target
        for target in unserved_targets(connection, now=now, silence_seconds=silence_seconds)
        if target.target in configured
    }
    flagged = {name for name, unserved in configured.items() if unserved}
    changed = sorted(found ^ flagged)
    if not changed:
        return ()
    for name in changed:
        connection.execute(
            update(targets).where(targets.c.name == name).values(unserved=name in found)
        )
    waiting = connection.execute(
        select(jobs.c.project)
        .where(jobs.c.target.in_(changed), jobs.c.state == JobState.PENDING.value)
        .distinct()
    ).scalars()
    mark_changed(connection, waiting)
    return tuple(changed)


def shown_unserved(connection: Connection) -> list[UnservedTarget]:
    """The targets flagged unserved (:func:`refresh_unserved`), with their pending jobs now
    and when one of their builders was last seen, by name."""
    flagged = list(
        connection.execute(
            select(targets.c.name).where(targets.c.unserved).order_by(targets.c.name)
        ).scalars()
    )
    if not flagged:
        return []
    pending: dict[str, int] = dict(
        connection.execute(
            select(jobs.c.target, func.count())
            .where(jobs.c.target.in_(flagged), jobs.c.state == JobState.PENDING.value)
            .group_by(jobs.c.target)
        ).all()
    )
    seen: dict[str, float | None] = dict(
        connection.execute(
            select(builders.c.target, func.max(builders.c.last_seen))
            .where(builders.c.target.in_(flagged))
            .group_by(builders.c.target)
        ).all()
    )
    return [UnservedTarget(name, int(pending.get(name, 0)), seen.get(name)) for name in flagged]
