"""The machine a run was measured on: figures mean little without it.

Cores, memory, the CPU's model, the Python build (version, compiler, whether built with PGO,
which changed the regeneration by about 10% here) and the load average, read at the start and
the end of the run, since other work on the machine moves every figure.
"""

from __future__ import annotations

import os
import platform
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import psutil

__all__ = ["Machine", "describe_machine", "load_average"]


@dataclass(frozen=True)
class Machine:
    cpu: str
    cores: int
    physical_cores: int | None
    memory_gib: float
    system: str
    python: str


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _python_build() -> str:
    arguments = str(sysconfig.get_config_var("CONFIG_ARGS") or "")
    optimised = "PGO" if "--enable-optimizations" in arguments else "no PGO"
    lto = ", LTO" if "--with-lto" in arguments else ""
    return (
        f"{platform.python_implementation()} {platform.python_version()} "
        f"({platform.python_compiler()}, {optimised}{lto}, {sys.executable})"
    )


def describe_machine() -> Machine:
    """What this machine is, as far as the figures care."""
    return Machine(
        cpu=_cpu_model(),
        cores=os.cpu_count() or 1,
        physical_cores=psutil.cpu_count(logical=False),
        memory_gib=psutil.virtual_memory().total / 2**30,
        system=f"{platform.system()} {platform.release()} ({platform.machine()})",
        python=_python_build(),
    )


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as uptime prints them."""
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())
