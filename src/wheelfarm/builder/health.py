"""What a builder tells the master about its machine with every heartbeat and claim.

The master's own readings are taken with the same function (``wheelfarm.monitor``).
"""

from __future__ import annotations

import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import psutil

from wheelfarm.protocol import Health

__all__ = ["cpu_temperature", "read_health"]

THERMAL = Path("/sys/class/thermal")


def cpu_temperature(thermal: Path = THERMAL) -> float | None:
    """The hottest sensor psutil knows, else the hottest thermal zone; None when there is none."""
    sensors = getattr(psutil, "sensors_temperatures", None)  # absent on some systems
    try:
        temperatures: dict[str, list[Any]] = sensors() if sensors else {}
    except OSError:
        temperatures = {}
    readings = [t.current for sensors in temperatures.values() for t in sensors if t.current]
    if readings:
        return float(max(readings))
    zones = []
    for zone in thermal.glob("thermal_zone*/temp"):
        try:
            zones.append(int(zone.read_text().strip()) / 1000)  # millidegrees Celsius
        except (OSError, ValueError):
            continue
    return max(zones) if zones else None


def read_health(path: Path) -> Health:
    """Temperature, load, memory, swap, the disk under ``path``, uptime, and this clock."""
    memory = psutil.virtual_memory()
    swap = psutil.swap_memory()
    disk = shutil.disk_usage(path)
    load1, load5, load15 = os.getloadavg()
    now = time.time()
    return Health(
        cpu_temperature=cpu_temperature(),
        load=load1,
        load5=load5,
        load15=load15,
        memory_percent=memory.percent,
        swap_percent=swap.percent,
        memory_used=memory.total - memory.available,
        memory_total=memory.total,
        memory_available=memory.available,
        swap_used=swap.used,
        swap_total=swap.total,
        disk_free_bytes=disk.free,
        disk_used_bytes=disk.used,
        uptime=max(0.0, now - psutil.boot_time()),
        clock=now,
    )


def _percent(value: float) -> float | None:
    return value if math.isfinite(value) and 0 <= value <= 100 else None
