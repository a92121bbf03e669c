"""The built-in server's hits, recorded off the request path.

The server calls :meth:`HitRecorder.on_hit` after answering; that appends a tuple to a bounded
queue and returns (a full queue drops the hit and counts it). A background thread takes the
queue about every second, turns the requests into hits and writes them in one transaction. A
database that is down costs the hits of that moment (counted as dropped once the queue is full
again), never a request: the writer keeps the batch, waits and tries again.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

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

__all__ = ["HitRecorder", "RecorderCounts", "start_recorder"]

log = logging.getLogger(__name__)

_Request = tuple[float, str, str, int, str, str]  # at, method, path, status, user agent, client


@dataclass
class RecorderCounts:
    """What the recorder did since it started."""

    queued: int = 0
    written: int = 0
    dropped: int = 0
    failed_batches: int = 0


class HitRecorder:
    """Queue requests from the server; write them as hits from a thread (:meth:`start`)."""

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
        self._queue: deque[_Request] = deque()
        self._agents = Agents()
        self._clients = ClientHasher(secret)
        self._classify = Classifier()
        self._known_agents: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pruned_day = -1

    def on_hit(
        self, method: str, path: str, status: int, headers: Mapping[str, str], client: str | None
    ) -> None:
        """Called by the server for each answered request: O(1), never raises, never waits."""
        if len(self._queue) >= self.capacity:
            self.counts.dropped += 1
            return
        agent = headers.get("user-agent", "")
        self._queue.append((time.time(), method, path, status, agent, client or ""))
        self.counts.queued += 1

    def start(self) -> HitRecorder:
        self._thread = threading.Thread(target=self._run, name="hit-recorder", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Write what is queued, then end the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        pending: list[Hit] = []
        agents: dict[int, Agent] = {}
        wait = self.interval
        while True:
            stopping = self._stop.wait(wait)
            pending.extend(self._take(agents))
            if pending:
                try:
                    self.flush(pending, agents)
                    pending = []
                    agents = {}
                    wait = self.interval
                except Exception:  # the database is down: keep the batch, wait, try again
                    self.counts.failed_batches += 1
                    self._known_agents.clear()  # the agents written may have been rolled back
                    log.warning("recording %d hits failed; trying again", len(pending))
                    wait = min(wait * 2, 30.0)
                    if len(pending) > self.capacity:
                        self.counts.dropped += len(pending) - self.capacity
                        pending = pending[-self.capacity :]
            if stopping:
                return

    def _take(self, agents: dict[int, Agent]) -> list[Hit]:
        """The queued requests that are hits; their user agents added to ``agents``."""
        hits = []
        queue = self._queue
        while queue:
            hit = self.hit_of(*queue.popleft(), agents=agents)
            if hit is not None:
                hits.append(hit)
        return hits

    def hit_of(
        self,
        at: float,
        method: str,
        path: str,
        status: int,
        user_agent: str,
        client: str,
        *,
        agents: dict[int, Agent],
    ) -> Hit | None:
        """The hit a request is, or None when it is not one; its user agent goes to ``agents``."""
        agent = self._agents(user_agent)
        found = self._classify(method, path, status, agent.is_installer)
        if isinstance(found, str):
            return None
        kind, project, version, filename, target = found
        day = int(at // DAY)
        hashed = self._clients(client, day)
        if status == 206 and filename is not None:
            key = range_key(day, hashed, agent.key, filename)
        else:
            key = int.from_bytes(os.urandom(8), "big", signed=True)  # each request is one hit
        agents[agent.key] = agent
        return Hit(key, day, at, kind, project, version, filename, target, hashed, agent.key)

    def flush(self, hits: list[Hit], agents: Mapping[int, Agent]) -> None:
        """Write ``hits`` (their user agents in ``agents``) in one transaction; prune once a day."""
        today = int(time.time() // DAY)
        with self.engine.begin() as connection:
            write_hits(connection, hits, agents, self._known_agents)
            if today != self._pruned_day:
                prune(connection, self.keep_days, today)
        self._pruned_day = today
        self.counts.written += len(hits)


def start_recorder(engine: Engine, settings: Settings) -> HitRecorder:
    """A started recorder writing to ``engine``, with the data directory's secret."""
    secret = load_secret(settings.data_dir)
    return HitRecorder(engine, secret, keep_days=settings.stats_keep_days).start()
