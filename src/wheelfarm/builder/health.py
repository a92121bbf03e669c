"""What a builder tells the master about its machine with every heartbeat."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Any

import psutil

from wheelfarm.protocol import MAX_BYTES, Health

__all__ = ["read_health"]


def read_health(path: Path) -> Health:
    """Temperature, load, memory, swap and free disk of this machine (what psutil can read).

    A reading outside what the protocol accepts (a broken sensor) is left out, not sent.
    """
    sensors = getattr(psutil, "sensors_temperatures", None)  # absent on some systems
    temperatures: dict[str, list[Any]] = sensors() if sensors else {}
    readings = [t.current for sensors in temperatures.values() for t in sensors if t.current]
    readings = [t for t in readings if math.isfinite(t) and -273.15 <= t <= 1000]
    load = os.getloadavg()[0]
    free = shutil.disk_usage(path).free
    return Health(
        cpu_temperature=max(readings) if readings else None,
        load=load if math.isfinite(load) and 0 <= load <= 1e6 else None,
        memory_percent=_percent(psutil.virtual_memory().percent),
        swap_percent=_percent(psutil.swap_memory().percent),
        disk_free_bytes=free if 0 <= free <= MAX_BYTES else None,
    )


def _percent(value: float) -> float | None:
    return value if math.isfinite(value) and 0 <= value <= 100 else None
