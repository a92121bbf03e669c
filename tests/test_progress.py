"""``up``'s console: the build progress line, "queue empty", and what it says as it stops."""

from __future__ import annotations

import pytest

from wheelfarm.app.progress import BuildProgress, eta_text
from wheelfarm.cli.up import farewell
from wheelfarm.farm.listings import QueueCounts


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (None, "time to go unknown"),  # nothing finished yet: no rate
        (0.0, "under a minute to go"),
        (59.0, "under a minute to go"),
        (60.0, "about 1 minute to go"),
        (8 * 60 + 10, "about 8 minutes to go"),
        (2 * 3600 + 5 * 60, "about 2 h 05 min to go"),
    ],
)
def test_eta_reads_at_a_glance(seconds: float | None, expected: str) -> None:
    assert eta_text(seconds) == expected


def counts(pending: int, building: int = 0, built: int = 0, failed: int = 0) -> QueueCounts:
    return QueueCounts(pending=pending, building=building, built=built, failed=failed)


def test_progress_says_done_queued_rate_and_time_to_go() -> None:
    progress = BuildProgress(counts(pending=10, built=5), now=0.0, line_every=30.0)
    # Four builds finished in two minutes (the five built before start are not counted).
    lines = progress.update(counts(pending=5, building=1, built=8, failed=1), now=120.0)
    assert lines == ["builds: 4 done, 6 queued (1 building), 2.0/min, about 3 minutes to go"]


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        # (seconds since start, pending, building, finished) after a start of 3 pending
        ([(10, 3, 0, 0)], []),  # nothing changed: nothing said
        ([(10, 2, 1, 0)], ["builds: 0 done, 3 queued (1 building), 0.0/min, time to go unknown"]),
        ([(40, 0, 0, 3)], ["queue empty: 3 builds done since start"]),
        ([(40, 0, 0, 3), (50, 0, 0, 3)], ["queue empty: 3 builds done since start"]),  # once
        (
            [(40, 1, 0, 2), (45, 0, 1, 2)],  # a change within 30 s of the last line waits
            ["builds: 2 done, 1 queued (0 building), 3.0/min, under a minute to go"],
        ),
        (
            [(40, 0, 0, 3), (50, 2, 0, 3), (60, 0, 0, 5)],  # drained, refilled, drained
            [
                "queue empty: 3 builds done since start",
                "queue empty: 5 builds done since start",
            ],
        ),
        (
            [(10, 1, 0, 2), (20, 0, 0, 3)],
            [
                "builds: 2 done, 1 queued (0 building), 12.0/min, under a minute to go",
                "queue empty: 3 builds done since start",
            ],
        ),
    ],
)
def test_progress_lines_come_when_something_changed(
    steps: list[tuple[float, int, int, int]], expected: list[str]
) -> None:
    progress = BuildProgress(counts(pending=3), now=0.0, line_every=30.0)
    said: list[str] = []
    for now, pending, building, finished in steps:
        said += progress.update(counts(pending, building, built=finished), now)
    assert said == expected


def test_an_empty_queue_at_start_is_not_announced() -> None:
    progress = BuildProgress(counts(pending=0), now=0.0)
    assert progress.update(counts(pending=0), now=5.0) == []


@pytest.mark.parametrize(
    ("under_way", "expected"),
    [
        (0, "stopping: no build was under way"),
        (1, "stopping: 1 build under way is ended and handed back to the queue"),
        (2, "stopping: 2 builds under way are ended and handed back to the queue"),
    ],
)
def test_up_says_a_build_is_ended_only_when_one_is(under_way: int, expected: str) -> None:
    assert farewell(under_way) == expected
