"""Builder tokens checked from memory: the table of hashes, read again every few seconds.

Looking a token up per request cost a query per heartbeat (and, before, a write of
``last_seen`` too: see :mod:`wheelfarm.farm.presence`). A cache per token with a short life
would not help, since builders beat every 30 s: it would be cold at each beat. So the cache
holds the whole table (a hash and a name per builder: 1,000 builders are ~150 KB) and reads it
again once it is :data:`REFRESH_SECONDS` old (the builder API has the presence writer read it
every second, :meth:`TokenCache.read`, so requests seldom find it old). A revoked token
(``builders remove``) therefore works for at most that long after its row is gone. A token
the cache does not know is looked up in the store at once (a builder added a moment ago works
at its first request); a miss is not cached, and failed tokens are slowed per address
(:mod:`wheelfarm.farm.throttle`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine

from wheelfarm.farm.registry import builder_tokens, builder_with_token, token_hash

__all__ = ["REFRESH_SECONDS", "TokenCache"]

#: How old the cached table may get before it is read again; a revoked token's last moment.
REFRESH_SECONDS = 2.0


class TokenCache:
    """Which builder holds a token, from a copy of the table at most ``refresh`` seconds old."""

    def __init__(
        self,
        engine: Engine,
        refresh: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._refresh = refresh
        self._clock = clock
        self._lock = threading.Lock()
        self._names: dict[str, str] = {}
        self._read_at: float | None = None

    def known(self, token: str) -> str | None:
        """The builder's name if the cached table is fresh and holds the token; never waits.

        None says nothing: ask :meth:`builder`, which may read the store.
        """
        if self._read_at is None or self._clock() - self._read_at >= self._refresh:
            return None
        return self._names.get(token_hash(token))

    def builder(self, token: str) -> str | None:
        """The builder's name (None: unknown, or revoked more than ``refresh`` seconds ago)."""
        digest = token_hash(token)
        names = self._current()
        name = names.get(digest)
        if name is None:
            with self._engine.connect() as connection:
                name = builder_with_token(connection, digest)
            if name is not None:
                with self._lock:
                    self._names[digest] = name
        return name

    def read(self) -> int:
        """Read the table again now; returns how many builders it holds.

        The presence writer calls this after each pass (every second while builders are heard
        from), so requests find the table fresh and never wait for it: read from the request
        path, every 2 s a burst of requests queued for worker threads behind one reader
        (``benchmarks/heartbeats.py --breakdown``: 403 of 12,000 heartbeats, 37 ms median wait).
        """
        began = self._clock()
        with self._engine.connect() as connection:
            names = builder_tokens(connection)
        with self._lock:
            if self._read_at is None or began >= self._read_at:
                self._names, self._read_at = names, began
            return len(names)

    def _current(self) -> dict[str, str]:
        """The table, read again first if it is too old (one reader; the others wait for it)."""
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self._refresh:
                with self._engine.connect() as connection:
                    self._names = builder_tokens(connection)
                self._read_at = now
            return self._names
