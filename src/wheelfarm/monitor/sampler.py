"""The master's sampler: its own readings and the builders' into the history, every N seconds.

One pass (:func:`sample_once`) reads this machine (the builders' reader, on the data directory),
the queue per target, builds per hour per target and outcome, the follower's lag and the free
space under the data directory and the published tree; writes a sample for the master and one
per builder heard from since the last pass; compacts the history; and pauses building while the
disk the wheels go to has less free than ``min_free_disk`` (resuming once it has 10 % more).
``up`` runs it in a thread (:func:`start_sampler`).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, func, select

from wheelfarm.builder.health import read_health
from wheelfarm.farm.pause import farm_paused, pause_farm, resume_farm
from wheelfarm.farm.readings import latest_readings, readings_of
from wheelfarm.monitor.history import compact, record_samples
from wheelfarm.monitor.overview import MASTER, target_views
from wheelfarm.store.journal import UPSTREAM_HEAD, get_state, position, timestamp_at
from wheelfarm.store.schema import builds

__all__ = ["SamplerConfig", "follower_lag", "master_readings", "sample_once", "start_sampler"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplerConfig:
    data_dir: Path
    tree_dir: Path
    wheel_dir: Path
    interval: float = 60.0
    min_free_disk: int = 2 << 30  # bytes free under wheel_dir below which building pauses


def _free(path: Path) -> int | None:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return shutil.disk_usage(candidate).free
    return None


def follower_lag(connection: Connection, now: float) -> dict[str, float]:
    """Serials behind the upstream's head (as last read), and the age of the last event applied."""
    lag: dict[str, float] = {}
    here = position(connection)
    head = (get_state(connection, UPSTREAM_HEAD) or "").split()
    if head:
        lag["lag_serials"] = max(0, int(head[0]) - here)
        lag["upstream_checked_at"] = float(head[1])
    stamp = timestamp_at(connection, here) if here else None
    if stamp is not None:
        lag["lag_seconds"] = max(0.0, now - stamp)
    lag["changelog_serial"] = here
    return lag


def master_readings(connection: Connection, config: SamplerConfig, now: float) -> dict[str, float]:
    """This machine's readings and the farm's: queues, builds per hour, lag, free space."""
    values = readings_of(read_health(config.data_dir), now=now)
    values.pop("clock_offset", None)  # the master's clock is the reference
    for queue in target_views(connection, now, []):
        values[f"queue:{queue.name}"] = queue.pending
        if queue.oldest_age is not None:
            values[f"oldest:{queue.name}"] = queue.oldest_age
    hourly = connection.execute(
        select(builds.c.target, builds.c.status, func.count())
        .where(builds.c.started_at >= now - 3600, builds.c.status != "building")
        .group_by(builds.c.target, builds.c.status)
    )
    for target, outcome, count in hourly:
        values[f"builds_hour:{target}:{outcome}"] = count
    values.update(follower_lag(connection, now))
    for name, path in (("data_free", config.data_dir), ("tree_free", config.tree_dir)):
        free = _free(path)
        if free is not None:
            values[name] = free
    return values


def _guard_disk(connection: Connection, config: SamplerConfig) -> None:
    free = _free(config.wheel_dir)
    if free is None:
        return
    paused = farm_paused(connection)
    if free < config.min_free_disk and paused is None:
        log.warning("building paused: %d bytes free under %s", free, config.wheel_dir)
        pause_farm(connection, "disk")
    elif paused == "disk" and free >= config.min_free_disk * 1.1:
        log.warning("building resumed: %d bytes free under %s", free, config.wheel_dir)
        resume_farm(connection, "disk")


def sample_once(engine: Engine, config: SamplerConfig, now: float) -> None:
    """One pass: sample the master and the builders heard from, compact, guard the disk.

    The readings are read first; the writing transaction starts with its first write, so on
    SQLite it waits for the lock instead of failing to upgrade a read under busy writers.
    """
    with engine.connect() as connection:
        readings = {MASTER: master_readings(connection, config, now)}
        for builder, (received, values) in latest_readings(connection).items():
            if received > now - config.interval and values:
                readings[f"builder:{builder}"] = values
    with engine.begin() as connection:
        record_samples(connection, now, readings)
        _guard_disk(connection, config)
        compact(connection, now)


def start_sampler(engine: Engine, config: SamplerConfig, stop: threading.Event) -> threading.Thread:
    """Sample now, then every ``interval`` seconds until ``stop`` is set; errors are logged."""

    def run() -> None:
        while True:
            try:
                sample_once(engine, config, time.time())
            except Exception:  # the sampler must not die: the next pass may work
                log.exception("monitor sample failed")
            if stop.wait(config.interval):
                return

    thread = threading.Thread(target=run, name="monitor-sampler", daemon=True)
    thread.start()
    return thread
