"""How many compilers a build may run: the rule as a table, and what a real build sees."""

from __future__ import annotations

import pytest

from wheelfarm.builder.resources import (
    MEMORY_PER_JOB,
    measured_jobs,
    parallel_environment,
    parallel_jobs,
)

GIB = 1 << 30

# (cores, available memory, jobs)
RULE = [
    (4, 16 * GIB, 4),  # memory to spare: one job per core
    (4, 2 * GIB, 1),  # a small board: 2 GiB hold one 1.5 GiB compiler, not four
    (4, 3 * GIB, 2),  # exactly two compilers' worth
    (4, 3 * GIB - 1, 1),  # a byte short of two
    (8, 7 * GIB, 4),
    (1, 64 * GIB, 1),  # one core: one job, whatever the memory
    (4, 0, 1),  # no memory free at all: still one job, or nothing would build
    (0, 16 * GIB, 1),  # no core reported: one job
]


@pytest.mark.parametrize(("cores", "available", "jobs"), RULE)
def test_jobs_are_the_cores_the_free_memory_can_feed(cores: int, available: int, jobs: int) -> None:
    assert parallel_jobs(cores, available) == jobs


def test_a_job_is_counted_at_one_and_a_half_gibibytes() -> None:
    assert MEMORY_PER_JOB == 3 * GIB // 2


def test_the_usual_build_systems_are_told() -> None:
    assert parallel_environment(3) == {
        "MAKEFLAGS": "-j3",
        "CMAKE_BUILD_PARALLEL_LEVEL": "3",
        "NPY_NUM_BUILD_JOBS": "3",
        "MAX_JOBS": "3",
    }
    assert parallel_environment(0)["MAKEFLAGS"] == "-j1"


def test_this_machine_gets_at_least_one_job() -> None:
    assert measured_jobs() >= 1
