"""What builders' requests leave behind, kept in memory and written in one batch a second.

Every authenticated request notes when its builder was last seen; every heartbeat renews a
lease and brings readings; claims bring readings too. Written per request, that is one write
transaction per heartbeat, and on SQLite writers queue for one lock: measured with
``benchmarks/heartbeats.py``, 200 builders beating every 5 s already had a p99 of 254 ms (the
busy handler sleeps up to 100 ms between tries), and 1,000 did not finish. So the requests
only note these here, and one writer thread writes what was noted in one transaction every
:data:`FLUSH_SECONDS` (``executemany``: one statement per kind, whatever the number of
builders). The latest value per builder (or build) wins; nothing else is kept.

What this costs: the store lags the requests by up to a second (the dashboard shows a
builder's last request a second late), and a master killed hard loses the last second's
notes (a builder looks seen a second earlier; a lease renewal is lost, and the lease is still
hundreds of seconds long). A renewal of a lease close to running out is written by the
request itself (:mod:`wheelfarm.farm.heartbeats`), so a builder told to go on holds its job.

After each pass the writer runs what its owner gave as ``after_pass``: the builder API reads
its token table (:class:`~wheelfarm.farm.tokens.TokenCache`) and its
:class:`~wheelfarm.farm.lease_book.LeaseBook` again there, so requests find both fresh, and
heartbeats are answered from a copy a second old, read after the renewals were written.

The writer thread starts with the first note and ends when a pass finds nothing to write, so
an app that is not served (or a test) leaves no thread behind; :meth:`Presence.flush` writes
at once (the app's shutdown calls it). A failed pass keeps its notes for the next; after
:data:`GIVE_UP_AFTER` failures in a row they are dropped (logged), so a store that went away
does not keep a thread retrying forever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, bindparam, update

from wheelfarm.farm.readings import record_all_readings
from wheelfarm.farm.registry import note_seen
from wheelfarm.protocol import Health
from wheelfarm.store.schema import jobs

__all__ = ["FLUSH_SECONDS", "GIVE_UP_AFTER", "Presence", "Renewal", "renew_leases"]

log = logging.getLogger(__name__)

#: How often noted presence is written, at most (seconds).
FLUSH_SECONDS = 1.0
#: Failed passes in a row after which the notes are dropped (logged): they are all replaced by
#: the builders' next requests, and a lease running low is renewed by the request itself.
GIVE_UP_AFTER = 60


@dataclass(frozen=True)
class Renewal:
    """A lease to extend: the job of a build under way, its builder, the new end."""

    project: str
    version: str
    target: str
    builder: str
    expires: float


def renew_leases(connection: Connection, renewals: Mapping[int, Renewal]) -> None:
    """Extend each job's lease, if the job is still its builder's and the lease ends sooner.

    A job that ended, expired or went to another builder since the heartbeat is left alone:
    its ``builder`` or ``state`` no longer match (:func:`~wheelfarm.farm.jobs.expire_leases`
    clears the builder). Rows are updated in key order, so two writers never wait for each
    other's rows in opposite orders (a deadlock, on PostgreSQL).
    """
    if not renewals:
        return
    statement = (
        update(jobs)
        .where(
            jobs.c.project == bindparam("r_project"),
            jobs.c.version == bindparam("r_version"),
            jobs.c.target == bindparam("r_target"),
            jobs.c.builder == bindparam("r_builder"),
            jobs.c.state == "building",
            jobs.c.lease_expires < bindparam("r_expires"),
        )
        .values(lease_expires=bindparam("r_expires"))
    )
    rows = [
        {
            "r_project": r.project,
            "r_version": r.version,
            "r_target": r.target,
            "r_builder": r.builder,
            "r_expires": r.expires,
        }
        for r in sorted(renewals.values(), key=lambda r: (r.project, r.version, r.target))
    ]
    connection.execute(statement, rows)


class Presence:
    """Last-seen times, lease renewals and readings noted by requests, written in batches.

    Thread-safe: requests note from the event loop and worker threads; one thread writes.
    """

    def __init__(
        self,
        engine: Engine,
        every: float = FLUSH_SECONDS,
        after_pass: Sequence[Callable[[], object]] = (),
    ) -> None:
        self._engine = engine
        self._every = every
        self._after_pass = tuple(after_pass)
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # one writer at a time, in order
        self._seen: dict[str, float] = {}
        self._renewals: dict[int, Renewal] = {}  # by build id
        self._readings: dict[str, tuple[float, Health]] = {}
        self._writer: threading.Thread | None = None

    def seen(self, builder: str, now: float) -> None:
        """The builder made a request at ``now`` (the master's clock)."""
        with self._lock:
            self._seen[builder] = now
            self._wake()

    def renewed(self, build_id: int, renewal: Renewal) -> None:
        """The build's lease should now end at ``renewal.expires``."""
        with self._lock:
            self._renewals[build_id] = renewal
            self._wake()

    def forget_renewal(self, build_id: int) -> None:
        """The build's lease was renewed in the request itself: nothing is left to write."""
        with self._lock:
            self._renewals.pop(build_id, None)

    def readings(self, builder: str, health: Health, now: float) -> None:
        """The builder's latest readings, received at ``now``."""
        with self._lock:
            self._readings[builder] = (now, health)
            self._wake()

    def pending(self) -> int:
        """How many notes wait to be written."""
        with self._lock:
            return self._count()

    def _count(self) -> int:
        """How many notes wait (the caller holds the lock)."""
        return len(self._seen) + len(self._renewals) + len(self._readings)

    def flush(self) -> int:
        """Write everything noted so far in one transaction; returns how many notes.

        If the write fails the notes are put back (newer ones noted meanwhile win) and the
        error is raised; the writer thread logs it and tries again at its next pass.
        """
        with self._flushing:
            with self._lock:
                seen, self._seen = self._seen, {}
                renewals, self._renewals = self._renewals, {}
                readings, self._readings = self._readings, {}
            count = len(seen) + len(renewals) + len(readings)
            if not count:
                return 0
            try:
                with self._engine.begin() as connection:
                    note_seen(connection, seen)
                    renew_leases(connection, renewals)
                    record_all_readings(connection, readings)
            except BaseException:
                with self._lock:
                    self._seen = {**seen, **self._seen}
                    self._renewals = {**renewals, **self._renewals}
                    self._readings = {**readings, **self._readings}
                raise
            return count

    def _wake(self) -> None:
        """Start the writer thread if none runs (called with the lock held)."""
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._write_while_busy, name="presence-writer", daemon=True
            )
            self._writer.start()

    def _write_while_busy(self) -> None:
        """Flush every ``every`` seconds; stop once a pass finds nothing noted."""
        failures = 0
        while True:
            time.sleep(self._every)
            with self._lock:
                if failures >= GIVE_UP_AFTER:
                    log.error("dropping %d builders' presence notes", self._count())
                    self._seen, self._renewals, self._readings = {}, {}, {}
                if not (self._seen or self._renewals or self._readings):
                    self._writer = None
                    return
            try:
                self.flush()
                failures = 0
            except Exception:  # the writer must not die: the next pass may work
                failures += 1
                log.exception("writing builders' presence failed (%d in a row)", failures)
            self._run_after_pass()

    def _run_after_pass(self) -> None:
        """What the owner asked to run after each pass (readings of the token table and the
        lease book), each on its own: one failing does not stop the others; logged."""
        for step in self._after_pass:
            try:
                step()
            except Exception:  # the writer must not die for it: the next pass tries again
                log.exception("after writing builders' presence")
