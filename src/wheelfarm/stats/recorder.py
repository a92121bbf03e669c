"""The built-in server's hits, recorded off the request path and out of the server's process.

The server calls :meth:`HitRecorder.on_hit` after answering; that appends a tuple to a bounded
queue and returns (a full queue drops the hit and counts it). About every second a thread of
the server takes the queue and sends it, one pickle a batch, to a child process, which turns
the requests into hits (user agents parsed, paths classified, clients hashed) and writes them
in one transaction. So the server's interpreter does the append and the send, nothing more.

Why a process (issue 15): the work of a hit, done in a thread of the server, cost 8 to 14 us
of CPU in a loaded server and held the server's interpreter meanwhile, and hit logging cost
the server 29 % of its requests per second. The append and the send cost about 2 us a hit.

A database that is down costs the hits of that moment, never a request: the child keeps its
batch, waits and tries again, and drops (and counts) what goes past its capacity; the server
side drops when its own queue is full. Counts come back from the child with each batch it
ends, and all of them at :meth:`HitRecorder.stop`.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import random
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection

from sqlalchemy import Engine

from wheelfarm.config import Settings
from wheelfarm.stats.agents import Agent, Agents
from wheelfarm.stats.hits import (
    DAY,
    Classifier,
    ClientHasher,
    Hit,
    load_secret,
    range_key,
)
from wheelfarm.stats.record import prune, write_hits
from wheelfarm.store.database import create_store_engine

__all__ = ["HitRecorder", "RecorderCounts", "start_recorder"]

log = logging.getLogger(__name__)

# A GET answered: at, path, status, user agent (the bytes sent), client address.
_Request = tuple[float, str, int, bytes, str | None]


@dataclass
class RecorderCounts:
    """What the recorder did since it started."""

    queued: int = 0
    written: int = 0
    dropped: int = 0
    failed_batches: int = 0


@dataclass(frozen=True)
class _ChildCounts:
    """What the child did since it started, as it reports it (all of it, not the change)."""

    written: int
    dropped: int
    failed_batches: int


class HitRecorder:
    """Queue requests from the server; a child process writes them as hits (:meth:`start`)."""

    def __init__(
        self,
        engine: Engine,
        secret: bytes,
        *,
        keep_days: int = 90,
        capacity: int = 100_000,
        interval: float = 1.0,
    ) -> None:
        self.engine = engine
        self.keep_days = keep_days
        self.capacity = capacity
        self.interval = interval
        self.counts = RecorderCounts()
        self._secret = secret
        self._queue: deque[_Request] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._pipe: Connection | None = None
        self._child_dropped = 0

    def on_hit(self, path: str, status: int, agent: bytes, client: str | None) -> None:
        """Called by the server for each GET it answered (``HitCallback``): O(1), never
        raises, never waits. What it is told goes on as it came (no decoding here)."""
        queue = self._queue
        if len(queue) >= self.capacity:
            self.counts.dropped += 1
            return
        queue.append((time.time(), path, status, agent, client))
        self.counts.queued += 1

    def start(self) -> HitRecorder:
        """Start the child process and the thread that feeds it."""
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        url = self.engine.url.render_as_string(hide_password=False)
        recipe = _Recipe(url, self._secret, self.keep_days, self.capacity, self.interval)
        self._process = context.Process(
            target=_record, args=(recipe, theirs), name="hit-recorder", daemon=True
        )
        self._process.start()
        theirs.close()
        self._pipe = ours
        self._thread = threading.Thread(target=self._run, name="hit-sender", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Send what is queued, let the child write it, then end the thread and the child."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._process is not None:
            self._process.join(timeout=30)
            if self._process.is_alive():
                log.warning("the hit recorder did not end; its last hits are lost")
                self._process.kill()
                self._process.join()
        if self._pipe is not None:
            self._pipe.close()

    def _run(self) -> None:
        """Every ``interval``: the queue to the child, and the child's counts back."""
        pipe = self._pipe
        assert pipe is not None  # started
        try:
            while True:
                stopping = self._stop.wait(self.interval)
                batch = self._take()
                if batch:
                    pipe.send(batch)
                self._read_counts(pipe)
                if stopping:
                    pipe.send(None)  # write what you have, then end
                    while self._read_counts(pipe, wait=30.0):
                        pass
                    return
        except (OSError, EOFError):  # the child is gone: the hits it had are lost
            log.warning("the hit recorder ended early; hits are no longer recorded")

    def _take(self) -> list[_Request]:
        """The queued requests, each distinct user agent once (a server sees few): the batch's
        pickle then holds each once (measured: 0.9 us a request to pickle, 0.66 so)."""
        queue = self._queue
        agents: dict[bytes, bytes] = {}
        take, same = queue.popleft, agents.setdefault
        batch = []
        for _ in range(len(queue)):
            at, path, status, agent, client = take()
            batch.append((at, path, status, same(agent, agent), client))
        return batch

    def _read_counts(self, pipe: Connection, wait: float = 0.0) -> bool:
        """Take the counts the child sent; False when it has ended (or said nothing in
        ``wait`` seconds)."""
        received = False
        while pipe.poll(wait if not received else 0):
            counts = pipe.recv()
            if counts is None:
                return False
            self._child_counts(counts)
            received = True
        return received

    def _child_counts(self, counts: _ChildCounts) -> None:
        self.counts.written = counts.written
        self.counts.failed_batches = counts.failed_batches
        self.counts.dropped += counts.dropped - self._child_dropped
        self._child_dropped = counts.dropped


@dataclass(frozen=True)
class _Recipe:
    """What the child needs: the store, the secret, the kept days, its capacity and pace."""

    url: str
    secret: bytes
    keep_days: int
    capacity: int
    interval: float


class _Writer:
    """The child's side: requests to hits, hits into the store (with retries)."""

    def __init__(self, recipe: _Recipe) -> None:
        self.recipe = recipe
        self.engine = create_store_engine(recipe.url)
        self.agents = Agents()
        self.clients = ClientHasher(recipe.secret)
        self.classify = Classifier()
        self.known_agents: set[int] = set()
        self.keys = random.Random()  # seeded from the system's randomness: no syscall a hit
        self.pending: list[Hit] = []
        self.pending_agents: dict[int, Agent] = {}
        self.written = 0
        self.dropped = 0
        self.failed_batches = 0
        self.pruned_day = -1

    def counts(self) -> _ChildCounts:
        return _ChildCounts(self.written, self.dropped, self.failed_batches)

    def add(self, requests: list[_Request]) -> None:
        for request in requests:
            hit = self.hit_of(*request)
            if hit is not None:
                self.pending.append(hit)
        if len(self.pending) > self.recipe.capacity:  # the store has been down a while
            self.dropped += len(self.pending) - self.recipe.capacity
            self.pending = self.pending[-self.recipe.capacity :]

    def hit_of(
        self, at: float, path: str, status: int, user_agent: bytes, client: str | None
    ) -> Hit | None:
        """The hit a GET is, or None when it is not one."""
        agent = self.agents(user_agent.decode("latin-1"))
        found = self.classify("GET", path, status, agent.is_installer)
        if isinstance(found, str):
            return None
        kind, project, version, filename, target = found
        day = int(at // DAY)
        hashed = self.clients(client or "", day)
        if status == 206 and filename is not None:
            key = range_key(day, hashed, agent.key, filename)
        else:
            key = self.keys.getrandbits(64) - 2**63  # each request is one hit
        self.pending_agents[agent.key] = agent
        return Hit(key, day, at, kind, project, version, filename, target, hashed, agent.key)

    def flush(self) -> bool:
        """Write the pending hits in one transaction (prune once a day); False when that
        failed (they stay pending)."""
        if not self.pending:
            return True
        today = int(time.time() // DAY)
        try:
            with self.engine.begin() as connection:
                write_hits(connection, self.pending, self.pending_agents, self.known_agents)
                if today != self.pruned_day:
                    prune(connection, self.recipe.keep_days, today)
        except Exception:  # the database is down: keep the batch, wait, try again
            self.failed_batches += 1
            self.known_agents.clear()  # the agents written may have been rolled back
            log.warning("recording %d hits failed; trying again", len(self.pending))
            return False
        self.pruned_day = today
        self.written += len(self.pending)
        self.pending = []
        self.pending_agents = {}
        gc.collect(1)
        return True


def _record(recipe: _Recipe, pipe: Connection) -> None:
    """The child: batches from the pipe, written about every ``interval``; counts sent back.

    Ends on None (the server stops: one last write) or when the pipe closes (the server died).
    It runs at a lower priority than the server (``nice`` 10): on a busy machine the requests
    come first, and the recorder catches up when there is time (its queue bounded, as above).
    """
    os.nice(10)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server stops on Ctrl-C, then tells us
    writer = _Writer(recipe)
    wait = recipe.interval
    ending = False
    while not ending:
        deadline = time.monotonic() + wait
        while not ending and (left := deadline - time.monotonic()) > 0 and pipe.poll(left):
            try:
                batch = pipe.recv()
            except EOFError:
                batch = None
            if batch is None:
                ending = True
            else:
                writer.add(batch)
        wait = recipe.interval if writer.flush() else min(wait * 2, 30.0)
        try:
            pipe.send(writer.counts())
        except OSError:  # the server is gone
            ending = True
    writer.engine.dispose()
    with contextlib.suppress(OSError):
        pipe.send(None)


def start_recorder(engine: Engine, settings: Settings) -> HitRecorder:
    """A started recorder writing to ``engine``'s store, with the data directory's secret."""
    secret = load_secret(settings.data_dir)
    return HitRecorder(engine, secret, keep_days=settings.stats_keep_days).start()
