"""How many compilers a build may run at once, from the builder's cores and free memory.

Build systems run one compiler per core when told to (``make -j``, CMake, numpy's distutils,
PyTorch's extensions), and a C++ compiler of a large project takes a gigabyte or more. On a
small board (four cores, two gigabytes) four of them exhaust the memory where one would pass,
and the build fails as out of memory. So before each build the builder measures and allows

    jobs = max(1, min(cores, available memory // 1.5 GiB))

(1.5 GiB per compiler: what one g++ of a large extension takes, with room for the rest of the
build), and passes it in the build's environment as ``MAKEFLAGS=-jN``,
``CMAKE_BUILD_PARALLEL_LEVEL=N``, ``NPY_NUM_BUILD_JOBS=N`` and ``MAX_JOBS=N``. The operator's
own ``environment`` setting wins over these. The log's header shows the values.
"""

from __future__ import annotations

import os

import psutil

__all__ = ["MEMORY_PER_JOB", "measured_jobs", "parallel_environment", "parallel_jobs"]

#: The memory one compiler process is counted to need.
MEMORY_PER_JOB = 3 << 29  # 1.5 GiB


def parallel_jobs(cores: int, available_bytes: int) -> int:
    """The rule: as many jobs as cores, but no more than the memory holds; at least one."""
    return max(1, min(cores, available_bytes // MEMORY_PER_JOB))


def parallel_environment(jobs: int) -> dict[str, str]:
    """The variables that tell the usual build systems how many jobs to run."""
    count = str(max(1, jobs))
    return {
        "MAKEFLAGS": f"-j{count}",
        "CMAKE_BUILD_PARALLEL_LEVEL": count,
        "NPY_NUM_BUILD_JOBS": count,
        "MAX_JOBS": count,
    }


def measured_jobs() -> int:
    """:func:`parallel_jobs` for this machine now: the cores this process may run on (its
    affinity, not the machine's count) and the memory available (psutil's estimate of what
    can be used without swapping)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = psutil.cpu_count() or 1
    return parallel_jobs(cores, int(psutil.virtual_memory().available))
