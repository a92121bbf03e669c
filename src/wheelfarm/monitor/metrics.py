"""Prometheus metrics, read from the store at each scrape (no global registry, no counters kept).

``/metrics`` builds a fresh :class:`~prometheus_client.CollectorRegistry` holding one
:class:`FarmCollector`, so every number is the store's at the moment of the scrape, whichever
process of the master answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, case, func, select

from wheelfarm.monitor.overview import Thresholds, builder_views, target_views
from wheelfarm.monitor.sampler import follower_lag
from wheelfarm.store.schema import build_files, builds

__all__ = ["DURATION_BUCKETS", "FarmCollector", "render_metrics"]

#: Build duration buckets, seconds: a minute to six hours.
DURATION_BUCKETS = (60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0)

#: Per-builder gauges: metric name suffix, reading, help.
_BUILDER_GAUGES = (
    ("load1", "load", "1-minute load average"),
    ("cpu_temperature_celsius", "cpu_temperature", "hottest CPU sensor"),
    ("memory_available_bytes", "memory_available", "memory available"),
    ("disk_available_bytes", "disk_free_bytes", "free space of the work directory"),
    ("clock_skew_seconds", "clock_offset", "builder clock minus the master's"),
)


class FarmCollector(Collector):
    """Every wheelfarm metric, read from the store when collected."""

    def __init__(self, engine: Engine, limits: Thresholds, clock: Callable[[], float]) -> None:
        self.engine = engine
        self.limits = limits
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        with self.engine.connect() as connection:
            yield from self._farm(connection, now)
            yield from self._builds(connection)
            lag = follower_lag(connection, now)
        serial = GaugeMetricFamily("wheelfarm_changelog_serial", "last changelog serial applied")
        serial.add_metric([], lag["changelog_serial"])
        yield serial
        if "lag_seconds" in lag:
            behind = GaugeMetricFamily(
                "wheelfarm_changelog_lag_seconds", "age of the last changelog event applied"
            )
            behind.add_metric([], lag["lag_seconds"])
            yield behind

    def _farm(self, connection: Connection, now: float) -> Iterator[Metric]:
        views = builder_views(connection, now, self.limits)
        queues = target_views(connection, now, views)
        length = GaugeMetricFamily("wheelfarm_queue_length", "pending jobs", labels=["target"])
        oldest = GaugeMetricFamily(
            "wheelfarm_queue_oldest_age_seconds", "age of the oldest pending job", labels=["target"]
        )
        states = GaugeMetricFamily(
            "wheelfarm_builders", "builders by state", labels=["target", "state"]
        )
        for queue in queues:
            length.add_metric([queue.name], queue.pending)
            if queue.oldest_age is not None:
                oldest.add_metric([queue.name], queue.oldest_age)
            for state, count in sorted(queue.builders.items()):
                states.add_metric([queue.name, state], count)
        yield from (length, oldest, states)
        seen = GaugeMetricFamily(
            "wheelfarm_builder_last_seen_timestamp_seconds", "last request", labels=["builder"]
        )
        gauges = [
            (GaugeMetricFamily(f"wheelfarm_builder_{name}", text, labels=["builder"]), reading)
            for name, reading, text in _BUILDER_GAUGES
        ]
        for view in views:
            if view.last_seen is not None:
                seen.add_metric([view.name], view.last_seen)
            for gauge, reading in gauges:
                if reading in view.readings:
                    gauge.add_metric([view.name], view.readings[reading])
        yield seen
        yield from (gauge for gauge, _ in gauges)

    def _builds(self, connection: Connection) -> Iterator[Metric]:
        total = CounterMetricFamily(
            "wheelfarm_builds", "builds finished", labels=["target", "result"]
        )
        counts = connection.execute(
            select(builds.c.target, builds.c.status, func.count())
            .where(builds.c.status != "building")
            .group_by(builds.c.target, builds.c.status)
        )
        for target, status, count in counts:
            total.add_metric([target, status], count)
        yield total
        finished = builds.c.duration.is_not(None)
        columns = [func.sum(case((builds.c.duration <= le, 1), else_=0)) for le in DURATION_BUCKETS]
        row = connection.execute(
            select(func.count(), func.coalesce(func.sum(builds.c.duration), 0.0), *columns).where(
                finished
            )
        ).one()
        count, total_seconds = int(row[0]), float(row[1])
        buckets = [(str(le), int(n or 0)) for le, n in zip(DURATION_BUCKETS, row[2:], strict=True)]
        histogram = HistogramMetricFamily(
            "wheelfarm_build_duration_seconds", "how long builds took", unit=""
        )
        histogram.add_metric([], [*buckets, ("+Inf", count)], total_seconds)
        yield histogram
        uploaded = CounterMetricFamily("wheelfarm_upload_bytes", "bytes of wheels accepted")
        uploaded.add_metric(
            [], connection.execute(select(func.sum(build_files.c.size))).scalar() or 0
        )
        yield uploaded


def render_metrics(
    engine: Engine, limits: Thresholds, clock: Callable[[], float] = time.time
) -> bytes:
    """The text exposition of every metric, read now."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FarmCollector(engine, limits, clock))
    return generate_latest(registry)
