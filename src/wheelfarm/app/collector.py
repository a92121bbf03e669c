"""The garbage collector's settings for the long-running master (``up``).

Measured with ``benchmarks/heartbeats.py --breakdown`` (1,000 builders beating every 5 s): with
Python's defaults (a young collection every 700 new objects) the master collected about 8 times
a second, and what the presence writer and the lease book keep for a second (a lease, a renewal
and readings per builder) lived long enough to be promoted, so a full collection ran every 15 s
or so, for about 30 ms of CPU each (and 100-175 ms of wall time on a loaded machine), while the
event loop waited. With a young threshold of :data:`YOUNG_THRESHOLD`, young collections come
every couple of seconds and cost a few milliseconds; objects that live a second mostly die
before they are ever examined, and none reached the oldest generation in a minute.

What was made at start (the apps, the tables, the models) lives as long as the process: frozen,
the full collections skip it. Before freezing, a full collection stopped the master for about
300 ms every 20-30 s (p99 382 ms, then 30 ms).
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "settle_collector"]

#: New container objects between two young collections (Python's default is 700).
YOUNG_THRESHOLD = 10_000


def settle_collector() -> None:
    """Freeze what exists now and collect the young generation less often (see above)."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
