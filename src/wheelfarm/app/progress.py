"""``up``'s progress line: builds done and queued, the rate, the time to go, and "queue empty".

An operator watching ``up`` saw builds start and end one by one with no idea how far along the
queue was. The line is made from the jobs' counts alone (one grouped query every few
seconds), so it costs the store nothing worth measuring and needs nothing from the builders.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from wheelfarm.farm.listings import QueueCounts, queue_counts
from wheelfarm.words import plural

__all__ = ["BuildProgress", "eta_text", "start_progress"]

log = logging.getLogger(__name__)

# The rate is measured over the last ten minutes: long enough to span a few builds of a slow
# target, short enough to follow a change of pace.
RATE_WINDOW = 600.0

# A progress line at most this often while builds finish; "queue empty" is said at once.
LINE_EVERY = 30.0


def eta_text(seconds: float | None) -> str:
    """How long is left, in the words a person reads at a glance."""
    if seconds is None:
        return "time to go unknown"
    if seconds < 60:
        return "under a minute to go"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {plural(minutes, 'minute')} to go"
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} h {minutes:02d} min to go"


class BuildProgress:
    """Turns successive queue counts into the lines ``up`` prints; the time is handed in.

    "Done" counts builds finished (built or failed) since ``up`` started; the rate is builds
    finished per minute over :data:`RATE_WINDOW`; the time to go is what is queued at that rate.
    """

    def __init__(self, start: QueueCounts, now: float, line_every: float = LINE_EVERY) -> None:
        self._start = start.finished
        self._samples: deque[tuple[float, int]] = deque([(now, 0)])
        self._line_every = line_every
        self._last_line: float | None = None
        self._shown = (0, start.queued, start.building)  # the queue as the operator saw it
        self._was_empty = start.queued == 0

    def update(self, counts: QueueCounts, now: float) -> list[str]:
        """The lines to print for these counts (often none)."""
        done = max(0, counts.finished - self._start)
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[1][0] >= RATE_WINDOW:
            self._samples.popleft()
        lines: list[str] = []
        empty = counts.queued == 0
        if empty and not self._was_empty:
            lines.append(f"queue empty: {plural(done, 'build')} done since start")
            self._shown, self._last_line = (done, 0, 0), now
        elif (
            not empty
            and (shown := (done, counts.queued, counts.building)) != self._shown
            and self._due(now)
        ):
            lines.append(self.line(counts, now))
            self._shown, self._last_line = shown, now
        self._was_empty = empty
        return lines

    def _due(self, now: float) -> bool:
        return self._last_line is None or now - self._last_line >= self._line_every

    def rate(self, now: float) -> float:
        """Builds finished per minute over the window (0 before anything finished)."""
        first_time, first_done = self._samples[0]
        last_done = self._samples[-1][1]
        minutes = (now - first_time) / 60
        return (last_done - first_done) / minutes if minutes > 0 else 0.0

    def line(self, counts: QueueCounts, now: float) -> str:
        """``builds: 12 done, 30 queued (1 building), 4.0/min, about 8 minutes to go``."""
        done = max(0, counts.finished - self._start)
        rate = self.rate(now)
        eta = eta_text(counts.queued / rate * 60 if rate > 0 else None)
        return (
            f"builds: {done} done, {counts.queued} queued ({counts.building} building), "
            f"{rate:.1f}/min, {eta}"
        )


def start_progress(
    engine: Engine,
    stop: threading.Event,
    say: Callable[[str], None],
    poll_seconds: float = 2.0,
) -> threading.Thread:
    """Poll the queue every ``poll_seconds`` and ``say`` the progress lines until ``stop``."""

    def counts() -> QueueCounts:
        with engine.connect() as connection:
            return queue_counts(connection)

    try:
        first = counts()
    except SQLAlchemyError as error:  # up goes on; the line starts from an empty queue
        log.debug("queue counts unavailable: %s", error)
        first = QueueCounts()
    progress = BuildProgress(first, time.monotonic())

    def run() -> None:
        while not stop.wait(poll_seconds):
            try:
                lines = progress.update(counts(), time.monotonic())
            except SQLAlchemyError as error:  # a busy or full database: say nothing this time
                log.debug("queue counts unavailable: %s", error)
                continue
            for line in lines:
                say(line)

    thread = threading.Thread(target=run, name="build-progress", daemon=True)
    thread.start()
    return thread
