"""The readings builders send (:class:`~wheelfarm.protocol.Health`), kept as the latest per builder.

A builder sends readings with each heartbeat (during a build) and each claim (between builds).
Readings the protocol dropped as nonsense are simply absent. The builder's clock becomes its
offset from the master's (``clock_offset``, seconds, positive when the builder is ahead): leases
never use the builder's clock, so a builder hours off still builds, and the offset is shown.
The history of readings is :mod:`wheelfarm.monitor.history`'s. The builder API does not write
readings per request: it notes them, and :mod:`wheelfarm.farm.presence` writes the latest of
each builder every second with :func:`record_all_readings` (one statement for all of them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from sqlalchemy import Connection, select

from wheelfarm.protocol import Health
from wheelfarm.store.dialect import upsert, upsert_all
from wheelfarm.store.schema import builder_readings

__all__ = ["latest_readings", "readings_of", "record_all_readings", "record_readings"]


def readings_of(health: Health, *, now: float) -> dict[str, float]:
    """The readings sent, as numbers by name, with the clock turned into ``clock_offset``."""
    values = {k: float(v) for k, v in health.model_dump(exclude_none=True).items()}
    clock = values.pop("clock", None)
    if clock is not None:
        values["clock_offset"] = clock - now
    return values


def record_readings(connection: Connection, builder: str, health: Health, *, now: float) -> None:
    """Keep ``health`` as the builder's latest readings, received ``now`` (the master's clock)."""
    row = {
        "builder": builder,
        "received_at": now,
        "readings": json.dumps(readings_of(health, now=now), separators=(",", ":")),
    }
    connection.execute(upsert(connection, builder_readings, row, ["builder"]))


def record_all_readings(connection: Connection, latest: Mapping[str, tuple[float, Health]]) -> None:
    """Keep each builder's latest readings, ``(received, health)`` by builder, in one statement."""
    if not latest:
        return
    rows = [
        {
            "builder": builder,
            "received_at": received,
            "readings": json.dumps(readings_of(health, now=received), separators=(",", ":")),
        }
        for builder, (received, health) in latest.items()
    ]
    upsert_all(connection, builder_readings, rows, ["builder"])


def latest_readings(connection: Connection) -> dict[str, tuple[float, dict[str, float]]]:
    """Every builder's latest readings and when they came, by builder name."""
    rows = connection.execute(select(builder_readings))
    return {row.builder: (row.received_at, json.loads(row.readings)) for row in rows}
