"""Targets no builder serves: pending jobs whose target's builders have all gone quiet.

A job waits until a builder of its target claims it; if none is running (never set up, or
switched off), the job stays pending for ever and nothing said why. This module finds such
targets so ``wheelfarm builds`` can say, in one line each, how many jobs wait and how long ago a
builder was last seen (any authenticated request sets ``builders.last_seen``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, func, select

from wheelfarm.farm.jobs import JobState
from wheelfarm.store.schema import builders, jobs

__all__ = ["UNSERVED_SILENCE_SECONDS", "UnservedTarget", "describe_silence", "unserved_targets"]

#: The default of the ``builder_silence_minutes`` setting, in seconds; the published home page
#: uses it (the publisher is not handed the setting).
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
