"""Write batches of hits in a child process while the parent reads on.

Ingesting a log is two jobs of about equal weight (issue 15, measured on the benchmark's
1,000,000 lines): reading the lines (about 5 us of CPU a line, and 0.7 to pickle its hit) and
writing their hits (0.5 to unpickle, 2.5 the raw row, 0.9 the daily counts, 1.6 their upsert,
0.4 the commit). In one process they take turns; here the writing runs in a child process of
its own, so on two cores they overlap.

A batch is sent in parts (50,000 hits each, one pickle of plain tuples a part): the child
inserts each part's raw hits as it comes, in the batch's open transaction, and numbers the new
ones for counting (:class:`~wheelfarm.stats.record.DailyCounter`); at the batch's last part it
counts them, adds the counts, prunes and commits. Counting wants big batches (each
``stats_daily`` row is upserted once a batch), overlap wants small parts: with whole batches of
500,000 sent at once, 1,000,000 lines were two batches and the second one's writing overlapped
nothing (the lines all read, half the writing still to do).

The child holds its own engine and the set of user agents it has written; its state lives in
the :class:`_Child` its pool's initializer made. Parts are written in the order they were
sent, a batch in one transaction, as :meth:`LogIngester.flush` writes in-process: the counts
and the "each hit once" rule do not depend on where they are written (a hit repeated in a
later part of the batch is a duplicate the insert finds).
"""

from __future__ import annotations

import gc
import multiprocessing
import signal
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import Connection

from wheelfarm.stats.agents import Agent
from wheelfarm.stats.hits import DAY, HitRow
from wheelfarm.stats.record import DailyCounter, add_counted, insert_hits, prune
from wheelfarm.store.database import create_store_engine

__all__ = ["ChildWriter", "StoreRecipe"]


@dataclass(frozen=True)
class StoreRecipe:
    """What the child needs to write as the parent would: the store, the kept days, the clock."""

    url: str
    keep_days: int
    now: float | None = None


@dataclass
class _Child:
    """The child's state: its engine, the user agents it has written (each once), and the
    batch being written: its open transaction, its new hits so far, their agents."""

    recipe: StoreRecipe
    known_agents: set[int] = field(default_factory=set)
    _connection: Connection | None = None
    _new: DailyCounter = field(default_factory=DailyCounter)
    _agents: dict[int, Agent] = field(default_factory=dict)
    _failed: BaseException | None = None

    def __post_init__(self) -> None:
        self.engine = create_store_engine(self.recipe.url)

    def write(self, hits: list[HitRow], agents: dict[int, Agent], last: bool) -> int | None:
        """Insert a part of a batch; at its ``last`` part, count the batch's new hits, prune
        and commit: how many hits of the batch were new. Once a part fails, the batch is
        rolled back and every later part of it fails with the same error."""
        try:
            if self._failed is not None:
                raise self._failed
            try:
                if self._connection is None:
                    self._connection = self.engine.connect()
                    self._connection.begin()
                self._agents.update(agents)
                self._new.add(
                    insert_hits(self._connection, hits, agents, self.known_agents), agents
                )
                if not last:
                    return None
                now = time.time() if self.recipe.now is None else self.recipe.now
                add_counted(self._connection, self._new.rows(self._agents))
                prune(self._connection, self.recipe.keep_days, int(now // DAY))
                self._connection.commit()
                return self._new.hits
            except BaseException as error:
                self._failed = error
                self.known_agents.clear()  # the agents written may have been rolled back
                raise
        finally:
            if last:
                self._end_batch()

    def _end_batch(self) -> None:
        if self._connection is not None:
            self._connection.close()  # rolls back what was not committed
        self._connection, self._failed = None, None
        self._new, self._agents = DailyCounter(), {}
        gc.collect()  # off in the child (:func:`_start`): a batch makes no cycle


_child: list[_Child] = []  # the child process's one _Child (set by _start, in the child only)


def _start(recipe: StoreRecipe) -> None:
    """The pool's initializer. Ctrl-C and SIGTERM are the parent's to handle (``--follow``
    stops on them, then has the child write what it was sent): the child ignores both, which
    a terminal or systemd send the whole process group. It ends when the parent does."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    gc.disable()  # hundreds of thousands of tuples a batch, none in a cycle
    _child.append(_Child(recipe))
    # numpy (the counts', record.DailyCounter) is imported now, not by the first part. What
    # the start made (SQLAlchemy's and numpy's modules) lives as long as the child: frozen, the
    # collection at each batch's end, which the parent waits for, leaves it alone (a batch's
    # end took 0.14 s after its commit, 0.02 with them frozen, on the benchmark's lines).
    import numpy  # noqa: F401

    gc.freeze()


def _ready() -> None:
    """Nothing: a task that makes the pool start its process."""


def _write(hits: list[HitRow], agents: dict[int, Agent], last: bool) -> int | None:
    return _child[0].write(hits, agents, last)


class ChildWriter:
    """One child process writing batches, part after part, in the order they are sent.

    At most about a batch is in flight (its parts sent, not yet written): the memory a batch
    takes, once more.
    """

    def __init__(self, recipe: StoreRecipe) -> None:
        self._pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start,
            initargs=(recipe,),
        )
        self._in_flight: deque[tuple[int, Future[int | None]]] = deque()
        self._sent = 0  # hits of the batch being sent so far
        # The pool starts its process at its first task: start it now, while the first part
        # is read, rather than once it is (a new interpreter, its imports, its engine).
        self._pool.submit(_ready)

    def send(
        self, hits: list[HitRow], agents: dict[int, Agent], end: bool, batch: int, part: int
    ) -> list[tuple[int, int]]:
        """Send a part of a batch (``agents``: those of its hits; ``end``: it ends its batch,
        as it does once ``batch`` hits are sent); the (hits, new hits) of each batch the child
        finished meanwhile."""
        finished: list[tuple[int, int]] = []
        if not hits and not (end and self._sent):
            return finished
        self._sent += len(hits)
        last = end or self._sent >= batch
        most = max(1, batch // part)
        while self._in_flight and (self._in_flight[0][1].done() or len(self._in_flight) > most):
            finished.extend(self._settle_one())
        future = self._pool.submit(_write, hits, agents, last)
        self._in_flight.append((self._sent if last else 0, future))
        if last:
            self._sent = 0
        return finished

    def wait(self) -> list[tuple[int, int]]:
        """Wait for every part sent; the (hits, new hits) of each batch they finished."""
        finished: list[tuple[int, int]] = []
        while self._in_flight:
            finished.extend(self._settle_one())
        return finished

    def _settle_one(self) -> list[tuple[int, int]]:
        """Wait for the oldest part; its batch's (hits, new hits) if it ended one (its error,
        if it failed)."""
        count, future = self._in_flight.popleft()
        new = future.result()
        return [] if new is None else [(count, new)]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
