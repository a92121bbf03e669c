"""The builds under way, their leases and their builders' commands, held in memory for heartbeats.

Measured with ``benchmarks/heartbeats.py --breakdown`` (1,000 builders beating every 5 s, the
machine's two cores loaded by other work): a heartbeat's one read took a hop to a worker thread,
a connection from the pool (on PostgreSQL a ping too, and 490 new connections in a minute as the
pool's overflow opened and closed, 22 ms each), the query, and a hop back to the event loop. On
PostgreSQL the app's p99 was 122 ms: 75 ms in the thread, 46 ms waiting for one, 37 ms coming
back. So a heartbeat reads this book instead, on the event loop, and touches no database.

The book is a copy of the store, read again after each pass of the presence writer (every
second while builders are heard from), and trusted for :data:`FRESH_SECONDS`: older, or without
the build, it answers nothing and the heartbeat reads the store as before. The builder API's own
claims and results change it at once (:meth:`LeaseBook.opened`, :meth:`LeaseBook.closed`), so a
builder's next heartbeat after its report is refused. What other processes change (an operator's
command from the CLI, a build cancelled there) reaches heartbeats with the next reading, within
about a second. A lease with less than half its length left *in the store's copy* is never
answered from memory: the request renews it in the store itself (:mod:`wheelfarm.farm.heartbeats`),
so whatever happens to the writer, a builder told ``continue`` holds its job.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy import Connection, Engine, select

from wheelfarm.protocol import Command
from wheelfarm.store.schema import builders, builds, jobs

__all__ = ["FRESH_SECONDS", "LeaseBook", "OpenLease", "command_told"]

#: How old a reading of the book may be and still answer heartbeats (seconds): the presence
#: writer reads it every second while it has notes, so two missed passes make it stale.
FRESH_SECONDS = 2.5

_COMMANDS: dict[str | None, Command] = {
    None: "continue",
    "skip": "skip",
    "pause": "pause",
    "stop": "stop",
}


def command_told(stored: str | None) -> Command:
    """The command a builder is told for ``builders.command`` as stored (none: continue)."""
    return _COMMANDS.get(stored, "continue")


@dataclass(frozen=True)
class OpenLease:
    """A build under way: its builder, its job, the job's lease as stored, the builder's command."""

    builder: str
    project: str
    version: str
    target: str
    expires: float
    command: Command


def read_open_leases(connection: Connection) -> dict[int, OpenLease]:
    """Every build under way whose job is still its builder's, by build id (one query).

    Starts from the jobs being built (an index on ``state``), not from all builds ever made.
    """
    j, b = jobs, builds
    rows = connection.execute(
        select(
            b.c.id,
            b.c.builder,
            b.c.project,
            b.c.version,
            b.c.target,
            j.c.lease_expires,
            builders.c.command,
        )
        .select_from(
            j.join(
                b,
                (b.c.project == j.c.project)
                & (b.c.version == j.c.version)
                & (b.c.target == j.c.target)
                & (b.c.builder == j.c.builder),
            ).outerjoin(builders, builders.c.name == b.c.builder)
        )
        .where(j.c.state == "building", b.c.status == "building", j.c.lease_expires.is_not(None))
    )
    return {
        int(row.id): OpenLease(
            row.builder,
            row.project,
            row.version,
            row.target,
            float(row.lease_expires),
            command_told(row.command),
        )
        for row in rows
    }


class LeaseBook:
    """Open builds by id, from a reading of the store at most ``fresh_for`` seconds old.

    Thread-safe: heartbeats look up on the event loop, claims and results change it from worker
    threads, the presence writer reads it again from its own.
    """

    def __init__(
        self,
        engine: Engine,
        fresh_for: float = FRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._fresh_for = fresh_for
        self._clock = clock
        self._lock = threading.Lock()
        self._leases: dict[int, OpenLease] = {}
        self._read_at: float | None = None
        # changes made here since a reading began: (when, the lease or None for closed)
        self._changes: dict[int, tuple[float, OpenLease | None]] = {}

    def lookup(self, build_id: int) -> OpenLease | None:
        """The build's lease if the book is fresh and holds it; None says: ask the store."""
        with self._lock:
            if self._read_at is None or self._clock() - self._read_at >= self._fresh_for:
                return None
            return self._leases.get(build_id)

    def opened(self, build_id: int, lease: OpenLease) -> None:
        """A build was claimed (or its lease renewed in the store) by this process."""
        self._change(build_id, lease)

    def closed(self, build_id: int) -> None:
        """A build ended here (its builder reported): its next heartbeat goes to the store."""
        self._change(build_id, None)

    def _change(self, build_id: int, lease: OpenLease | None) -> None:
        with self._lock:
            self._changes[build_id] = (self._clock(), lease)
            if lease is None:
                self._leases.pop(build_id, None)
            else:
                self._leases[build_id] = lease

    def read(self) -> int:
        """Read the book again from the store; returns how many builds are under way.

        Changes made here are laid over the readings for ``fresh_for`` seconds: a reading that
        began before a build's end was committed must not bring the build back, nor one that
        began before a claim was committed hide the new build, nor shorten a lease renewed
        since. The reading's command stands: it may be newer than the change.
        """
        began = self._clock()
        with self._engine.connect() as connection:
            leases = read_open_leases(connection)
        with self._lock:
            for build_id, (when, lease) in list(self._changes.items()):
                read = leases.get(build_id)
                if when < began - self._fresh_for:
                    del self._changes[build_id]  # long committed: the reading has it
                elif lease is None:
                    leases.pop(build_id, None)
                elif read is None:
                    leases[build_id] = lease
                elif read.expires < lease.expires:
                    leases[build_id] = replace(read, expires=lease.expires)
            self._leases = leases
            self._read_at = began
            return len(leases)
