"""The history of readings: every sample for a day, then 5-minute and hourly averages.

A sample is one JSON object of numbers for one source (``master`` or ``builder:NAME``) at one
time. :func:`compact` turns samples older than a day into 5-minute averages, those older than a
week into hourly ones, and deletes hourly ones older than :data:`KEEP_HOURLY`. It only averages
whole buckets (the cut-off is rounded down to a bucket's start), so no bucket is written twice.
Works the same on SQLite and PostgreSQL: the averaging is done here, not in SQL.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping

from sqlalchemy import Connection, and_, delete, insert, select

from wheelfarm.store.schema import samples

__all__ = [
    "KEEP_HOURLY",
    "RANGES",
    "Point",
    "compact",
    "record_samples",
    "series",
]

DAY = 86400.0
#: (age after which rows of ``step`` are averaged, the step they become)
_LEVELS = ((0, DAY, 300), (300, 7 * DAY, 3600))
KEEP_HOURLY = 90 * DAY
#: The ranges the dashboard offers, in seconds.
RANGES = {"hour": 3600.0, "day": DAY, "week": 7 * DAY}
_BATCH = 20_000  # rows averaged per call and level: bounds the sampler's pass

Point = tuple[float, dict[str, float]]


def record_samples(
    connection: Connection, at: float, readings: Mapping[str, Mapping[str, float]]
) -> None:
    """One sample per source, taken at ``at``."""
    rows = [
        {"source": source, "step": 0, "at": at, "readings": _dumps(values)}
        for source, values in readings.items()
    ]
    if rows:
        connection.execute(insert(samples), rows)


def _dumps(values: Mapping[str, float]) -> str:
    return json.dumps(dict(values), separators=(",", ":"))


def _average(points: Iterable[dict[str, float]]) -> dict[str, float]:
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for values in points:
        for key, value in values.items():
            sums[key] += value
            counts[key] += 1
    return {key: sums[key] / counts[key] for key in sums}


def compact(connection: Connection, now: float) -> int:
    """Average old samples into coarser ones and prune the oldest; returns rows removed."""
    removed = 0
    for step, age, into in _LEVELS:
        limit = (now - age) // into * into  # whole buckets only
        old = and_(samples.c.step == step, samples.c.at < limit)
        rows = connection.execute(
            select(samples.c.source, samples.c.at, samples.c.readings)
            .where(old)
            .order_by(samples.c.at)
            .limit(_BATCH)
        ).all()
        if not rows:
            continue
        # a full batch may end inside a bucket: take the buckets before the last one only
        last = rows[-1].at // into * into if len(rows) == _BATCH else limit
        buckets: dict[tuple[str, float], list[dict[str, float]]] = defaultdict(list)
        for row in rows:
            if row.at < last:
                buckets[(row.source, row.at // into * into)].append(json.loads(row.readings))
        averaged = [
            {"source": source, "step": into, "at": at, "readings": _dumps(_average(points))}
            for (source, at), points in buckets.items()
        ]
        if averaged:
            connection.execute(insert(samples), averaged)
        done = and_(samples.c.step == step, samples.c.at < last)
        removed += connection.execute(delete(samples).where(done)).rowcount
    hourly = and_(samples.c.step == 3600, samples.c.at < now - KEEP_HOURLY)
    removed += connection.execute(delete(samples).where(hourly)).rowcount
    return removed


def series(connection: Connection, source: str, *, since: float, points: int = 360) -> list[Point]:
    """The readings of ``source`` since ``since``, oldest first, averaged to at most ``points``."""
    rows = connection.execute(
        select(samples.c.at, samples.c.readings)
        .where(samples.c.source == source, samples.c.at >= since)
        .order_by(samples.c.at)
    ).all()
    found = [(float(row.at), json.loads(row.readings)) for row in rows]
    if len(found) <= points:
        return found
    width = (found[-1][0] - found[0][0]) / points or 1.0
    buckets: dict[int, list[Point]] = defaultdict(list)
    for at, values in found:
        buckets[int((at - found[0][0]) // width)].append((at, values))
    return [
        (group[0][0], _average(values for _, values in group))
        for _, group in sorted(buckets.items())
    ]
