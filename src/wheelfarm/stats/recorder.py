"""The built-in server's hits, recorded off the request path and out of the server's process.

The server calls :meth:`HitRecorder.on_hit` after answering; that folds the request into a
:class:`Batch` (each distinct (path, status, user agent, client) once, and per hit its time and
that request's number: 12 bytes in two arrays) and returns. About every second a thread of the
server (``hit-sender``) takes the batch and sends it, one pickle, to a child process, which
turns it into hits (user agents parsed, paths classified and clients hashed once per distinct
request a day) and writes them, ``PART`` hits a transaction. Folding at once, rather than
queueing each request's tuple for the thread to fold, costs the hook a dictionary lookup and
spares the server keeping every request's objects for a second: measured (with
``benchmarks/hit_hook.py``) 0.75 to 0.95 us of the server's CPU a request in all, against 1.15
to 1.3.

Why a process (issue 15): the work of a hit, done in a thread of the server, cost 8 to 14 us
of CPU in a loaded server and held the server's interpreter meanwhile, and hit logging cost
the server 29 % of its requests per second. It runs at ``nice`` 10, so that the server comes
first on a busy machine, and not at idle priority (``SCHED_IDLE``), which was tried: a child
kept off the CPU in the middle of a transaction holds SQLite's write lock, and on a master whose
cores emulated builds keep busy for hours, the follower, the publisher and the builder API
would wait on it past the store's busy timeout. Nor did it show a gain: with the child
stopped through a whole benchmark round, the server's CPU a request still rose by 5.7 %.

Where hits wait, and what bounds them: the batch being folded and the one being sent (the send
waits while the child does not read) hold at most ``capacity`` hits together (a hit past that is
dropped and counted); the child keeps what it could not write (the database is down) up to
``capacity`` hits, dropping (and counting) the oldest batches past that, and what is still
unwritten when it ends. A hit waiting costs about 16 bytes in the server and 13 in the child
(measured with the benchmark's requests: 1,600 distinct in 100,000; queued as each request's
tuple, as before, 500: the user agent's bytes as read). Counts come back from the child after
each transaction, and all of them at :meth:`HitRecorder.stop`, which logs them.
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
from array import array
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from sqlalchemy import Engine

from wheelfarm.config import Settings
from wheelfarm.stats.agents import Agent, Agents
from wheelfarm.stats.hits import DAY, Classifier, ClientHasher, HitRow, load_secret, range_key
from wheelfarm.stats.record import prune, write_hits
from wheelfarm.store.database import create_store_engine

__all__ = ["CAPACITY", "PART", "Batch", "HitRecorder", "RecorderCounts", "start_recorder"]

log = logging.getLogger(__name__)

#: Hits that may wait in the server, and in the child: at about 16 bytes a hit folded, 1,000,000
#: is 16 MB, and 40 s of a saturated server at 25,000 requests/s (ten of the benchmark's
#: four-second rounds).
CAPACITY = 1_000_000

#: Hits a transaction of the child at most: a transaction holds SQLite's write lock, and a
#: busy machine gives a ``nice`` 10 process a small share of a core. 10,000 hits take 60 to
#: 70 ms of CPU. Smaller parts cost more a hit (each part upserts its daily counts): measured
#: 6.2 to 7.0 us a hit at 10,000, 6.8 to 8.0 at 5,000, 4.5 to 5.0 at 25,000.
PART = 10_000

# A GET answered: path, status, user agent (the bytes sent), client address.
_Request = tuple[str, int, bytes, str | None]


@dataclass
class Batch:
    """Requests folded: each distinct request once; per hit its time and request's number."""

    requests: list[_Request]
    times: array[float] = field(default_factory=lambda: array("d"))
    numbers: array[int] = field(default_factory=lambda: array("I"))

    def __len__(self) -> int:
        return len(self.times)

    def parts(self, size: int) -> Iterator[Batch]:
        """This batch in slices of at most ``size`` hits (sharing the requests)."""
        for start in range(0, len(self), size):
            end = start + size
            yield Batch(self.requests, self.times[start:end], self.numbers[start:end])


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
    """Fold requests from the server; a child process writes them as hits (:meth:`start`)."""

    def __init__(
        self,
        engine: Engine,
        secret: bytes,
        *,
        keep_days: int = 90,
        capacity: int = CAPACITY,
        interval: float = 1.0,
        part: int = PART,
    ) -> None:
        self.engine = engine
        self.keep_days = keep_days
        self.capacity = capacity
        self.interval = interval
        self.part = part
        self._secret = secret
        self._folding = threading.Lock()  # the hook's, and the sender's to swap what it folded
        self._index: dict[_Request, int] = {}  # each distinct request since the last take
        self._agents: dict[bytes, bytes] = {}  # and each distinct user agent
        self._times: array[float] = array("d")
        self._numbers: array[int] = array("I")
        self._queued = 0  # on_hit's alone (the server's event loop)
        self._full = 0  # likewise: dropped because the server's side was full
        self._child = _ChildCounts(0, 0, 0)  # the sender thread's alone
        self._held = 0  # hits taken and not yet in the child's hands (being sent)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._pipe: Connection | None = None

    @property
    def counts(self) -> RecorderCounts:
        """Queued and dropped so far, as the server and the child last told."""
        child = self._child
        return RecorderCounts(
            self._queued, child.written, self._full + child.dropped, child.failed_batches
        )

    @property
    def pid(self) -> int | None:
        """The child process's id, once started."""
        return self._process.pid if self._process is not None else None

    def on_hit(self, path: str, status: int, agent: bytes, client: str | None) -> None:
        """Called by the server for each GET it answered (``HitCallback``): O(1), never
        raises, never waits (but for :meth:`take`'s swap). Folded at once: a request's own
        objects are not kept (keeping them a second cost the server more than folding)."""
        if len(self._times) + self._held >= self.capacity:
            self._full += 1
            return
        request = (path, status, agent, client)
        with self._folding:
            index = self._index
            number = index.get(request)
            if number is None:  # kept: each distinct user agent once
                agent = self._agents.setdefault(agent, agent)
                number = index[(path, status, agent, client)] = len(index)
            self._times.append(time.time())
            self._numbers.append(number)
        self._queued += 1

    def start(self) -> HitRecorder:
        """Start the child process and the thread that feeds it."""
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        url = self.engine.url.render_as_string(hide_password=False)
        recipe = _Recipe(url, self._secret, self.keep_days, self.capacity, self.interval, self.part)
        self._process = context.Process(
            target=_record, args=(recipe, theirs), name="hit-recorder", daemon=True
        )
        self._process.start()
        theirs.close()
        self._pipe = ours
        self._thread = threading.Thread(target=self._run, name="hit-sender", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 60.0) -> RecorderCounts:
        """Send what is folded, let the child write it, then end the thread and the child;
        the counts, also logged."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        if self._process is not None:
            self._process.join(timeout=timeout)
            if self._process.is_alive():
                log.warning("the hit recorder did not end; its last hits are lost")
                self._process.kill()
                self._process.join()
        if self._pipe is not None:
            self._pipe.close()
        counts = self.counts
        level = logging.WARNING if counts.dropped else logging.INFO
        log.log(
            level,
            "hit recorder: %d requests queued, %d hits written, %d dropped",
            counts.queued,
            counts.written,
            counts.dropped,
        )
        return counts

    def take(self) -> Batch | None:
        """What the hook folded since the last take (None when nothing); it counts against
        the capacity until :meth:`sent`."""
        with self._folding:
            if not self._times:
                return None
            batch = Batch(list(self._index), self._times, self._numbers)
            self._index, self._times, self._numbers = {}, array("d"), array("I")
            self._agents = {}
            self._held = len(batch)
        return batch

    def sent(self) -> None:
        """The batch taken is in the child's hands: it no longer counts against the capacity."""
        self._held = 0

    def _run(self) -> None:
        """Every ``interval``: what was folded to the child (the send waits while the child
        does not read, and the hook folds on meanwhile), and the child's counts back; at the
        end, None and the last counts."""
        pipe = self._pipe
        assert pipe is not None  # started
        try:
            while True:
                stopping = self._stop.wait(self.interval)
                batch = self.take()
                if batch is not None:
                    pipe.send(batch)
                    self.sent()
                self._read_counts(pipe)
                if stopping:
                    pipe.send(None)  # write what you have, then end
                    while self._read_counts(pipe, wait=30.0):
                        pass
                    return
        except (OSError, EOFError):  # the child is gone: the hits it had are lost
            log.warning("the hit recorder ended early; hits are no longer recorded")

    def _read_counts(self, pipe: Connection, wait: float = 0.0) -> bool:
        """Take the counts the child sent; False when it has ended (or said nothing in
        ``wait`` seconds)."""
        received = False
        while pipe.poll(wait if not received else 0):
            counts = pipe.recv()
            if counts is None:
                return False
            self._child = counts
            received = True
        return received


@dataclass(frozen=True)
class _Recipe:
    """What the child needs: the store, the secret, the kept days, its capacity and pace."""

    url: str
    secret: bytes
    keep_days: int
    capacity: int
    interval: float
    part: int


# A request's hit on a day, all but its key, day and time: (fixed key or None, the rest).
_Template = tuple[int | None, tuple[str, str, str | None, str | None, str | None, str, int]]


class _Writer:
    """The child's side: batches to hits, hits into the store a part at a time (with retries)."""

    def __init__(self, recipe: _Recipe) -> None:
        self.recipe = recipe
        self.engine = create_store_engine(recipe.url)
        self.agents = Agents()
        self.agents_read: dict[bytes, Agent] = {}  # the bytes as sent: no decoding a hit
        self.clients = ClientHasher(recipe.secret)
        self.classify = Classifier()
        self.known_agents: set[int] = set()
        self.keys = random.Random()  # seeded from the system's randomness: no syscall a hit
        self.pending: deque[Batch] = deque()
        self.pending_hits = 0
        self.written = 0
        self.dropped = 0
        self.failed_batches = 0
        self.pruned_day = -1

    def counts(self) -> _ChildCounts:
        return _ChildCounts(self.written, self.dropped, self.failed_batches)

    def add(self, batch: Batch) -> None:
        """Keep the batch to write, in parts; past ``capacity`` hits the oldest go."""
        for part in batch.parts(self.recipe.part):
            self.pending.append(part)
            self.pending_hits += len(part)
        while self.pending_hits > self.recipe.capacity:  # the store has been down a while
            oldest = self.pending.popleft()
            self.pending_hits -= len(oldest)
            self.dropped += len(oldest)

    def agent(self, user_agent: bytes) -> Agent:
        found = self.agents_read.get(user_agent)
        if found is None:
            found = self.agents(user_agent.decode("latin-1"))
            if len(self.agents_read) >= 65536:
                self.agents_read.clear()
            self.agents_read[user_agent] = found
        return found

    def template(self, request: _Request, day: int) -> _Template | None:
        """What every hit of ``request`` on ``day`` has in common; None when it is no hit."""
        path, status, user_agent, client = request
        agent = self.agent(user_agent)
        found = self.classify("GET", path, status, agent.is_installer)
        if isinstance(found, str):
            return None
        kind, project, version, filename, target = found
        hashed = self.clients(client or "", day)
        fixed = None
        if status == 206 and filename is not None:  # once per client, file and day
            fixed = range_key(day, hashed, agent.key, filename)
        return fixed, (kind, project, version, filename, target, hashed, agent.key)

    def rows(self, batch: Batch) -> tuple[list[HitRow], dict[int, Agent]]:
        """The hits of a batch, and their user agents: each distinct request read once a day."""
        rows: list[HitRow] = []
        agents: dict[int, Agent] = {}
        templates: dict[int, _Template | None] = {}
        templates_day = -1
        draw = self.keys.getrandbits
        for at, number in zip(batch.times, batch.numbers, strict=True):
            day = int(at // DAY)
            if day != templates_day:
                templates, templates_day = {}, day
            try:
                template = templates[number]
            except KeyError:
                template = templates[number] = self.template(batch.requests[number], day)
                if template is not None:
                    agents[template[1][6]] = self.agent(batch.requests[number][2])
            if template is None:
                continue
            fixed, rest = template
            key = fixed if fixed is not None else draw(64) - 2**63  # each request is one hit
            rows.append((key, day, at, *rest))
        return rows, agents

    def flush(self) -> bool:
        """Write the oldest pending part in one transaction (prune once a day); False when
        that failed (it stays pending)."""
        if not self.pending:
            return True
        part = self.pending[0]
        rows, agents = self.rows(part)
        today = int(time.time() // DAY)
        try:
            with self.engine.begin() as connection:
                if rows:
                    write_hits(connection, rows, agents, self.known_agents)
                if today != self.pruned_day:
                    prune(connection, self.recipe.keep_days, today)
        except Exception:  # the database is down: keep the part, wait, try again
            self.failed_batches += 1
            self.known_agents.clear()  # the agents written may have been rolled back
            log.warning("recording %d hits failed; trying again", len(rows))
            return False
        self.pruned_day = today
        self.written += len(rows)
        self.pending.popleft()
        self.pending_hits -= len(part)
        gc.collect(1)
        return True


def _record(recipe: _Recipe, pipe: Connection) -> None:
    """The child: batches from the pipe, written about every ``interval``, a part a
    transaction, with the counts sent back after each.

    Ends on None (the server stops: one last write) or when the pipe closes (the server died).
    """
    os.nice(10)  # the server's requests first (the module's docstring)
    # The server stops on Ctrl-C or SIGTERM, which a terminal or systemd send the whole process
    # group, then tells us (or its pipe closes): ours would lose the hits not yet written.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
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
        written = True
        while writer.pending and (written := writer.flush()):
            with contextlib.suppress(OSError):
                pipe.send(writer.counts())
        wait = recipe.interval if written else min(wait * 2, 30.0)
        try:
            pipe.send(writer.counts())
        except OSError:  # the server is gone
            ending = True
    writer.dropped += writer.pending_hits  # the store was down at the end: lost, and counted
    writer.engine.dispose()
    with contextlib.suppress(OSError):
        pipe.send(writer.counts())
        pipe.send(None)


def start_recorder(engine: Engine, settings: Settings) -> HitRecorder:
    """A started recorder writing to ``engine``'s store, with the data directory's secret."""
    secret = load_secret(settings.data_dir)
    return HitRecorder(engine, secret, keep_days=settings.stats_keep_days).start()
