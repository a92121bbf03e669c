"""What a builder tells the master about its machine with every heartbeat."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import psutil

from wheelfarm.protocol import Health

__all__ = ["read_health"]


def read_health(path: Path) -> Health:
    """Temperature, load, memory, swap and free disk of this machine (what psutil can read)."""
    sensors = getattr(psutil, "sensors_temperatures", None)  # absent on some systems
    temperatures: dict[str, list[Any]] = sensors() if sensors else {}
    readings = [t.current for sensors in temperatures.values() for t in sensors if t.current]
    return Health(
        cpu_temperature=max(readings) if readings else None,
        load=os.getloadavg()[0],
        memory_percent=psutil.virtual_memory().percent,
        swap_percent=psutil.swap_memory().percent,
        disk_free_bytes=shutil.disk_usage(path).free,
    )
