"""Failed builder-token attempts, counted per client address: logged, and slowed down.

Tokens are long random strings, so guessing one is hopeless; the throttle keeps a client that
tries anyway (or a builder with a revoked token in a tight loop) from filling the log and
loading the store. After a few free failures an address is locked out for a while that doubles
with each further failure, up to a cap; nothing else waits, since the lockout is a refusal
(HTTP 429 with ``Retry-After``), not a sleep. The table is in memory and bounded: the least
recently failing addresses are forgotten first.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["TokenThrottle"]

log = logging.getLogger(__name__)


@dataclass
class _Failures:
    count: int
    last: float
    locked_until: float


class TokenThrottle:
    """Per-address failure counts with an exponential lockout; safe across threads."""

    def __init__(
        self,
        *,
        free_failures: int = 5,
        max_lockout: float = 60.0,
        forget_after: float = 600.0,
        max_addresses: int = 4096,
    ) -> None:
        self.free_failures = free_failures
        self.max_lockout = max_lockout
        self.forget_after = forget_after
        self.max_addresses = max_addresses
        self._failures: OrderedDict[str, _Failures] = OrderedDict()
        self._lock = threading.Lock()

    def locked_for(self, address: str, now: float) -> float:
        """Seconds ``address`` must still wait before a token is checked (0: go ahead)."""
        with self._lock:
            entry = self._failures.get(address)
            if entry is None:
                return 0.0
            if now - entry.last > self.forget_after:
                del self._failures[address]
                return 0.0
            return max(0.0, entry.locked_until - now)

    def failed(self, address: str, now: float) -> None:
        """Count a refused token from ``address``, log it, and lock the address when due."""
        with self._lock:
            entry = self._failures.pop(address, None)
            if entry is None or now - entry.last > self.forget_after:
                entry = _Failures(0, now, 0.0)
            entry.count += 1
            entry.last = now
            beyond = entry.count - self.free_failures
            if beyond > 0:
                entry.locked_until = now + min(self.max_lockout, 2.0 ** min(beyond, 30))
            self._failures[address] = entry  # the most recent goes last
            while len(self._failures) > self.max_addresses:
                self._failures.popitem(last=False)
            count, wait = entry.count, max(0.0, entry.locked_until - now)
        log.warning(
            "refused an unknown or revoked builder token from %s (%d in a row%s)",
            address,
            count,
            f"; locked out for {math.ceil(wait)} s" if wait else "",
        )

    def succeeded(self, address: str) -> None:
        """A valid token from ``address``: its count starts again."""
        with self._lock:
            self._failures.pop(address, None)
