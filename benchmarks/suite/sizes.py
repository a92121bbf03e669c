"""How big each benchmark runs: the size the issues ask for, and a quick one.

The default is what the issues set (1,000 projects served, scale points up to a million
events, lines and wheels) and must finish in under 40 minutes on the two-core development
machine (issue 18). Its scale points are medians of three runs but at a million, which run
once: one million-event, -line or -wheel run takes minutes. The million-wheel regeneration
goes over a tree of two million files written once and kept in the suite's cache
(benchmarks/suite/scale.py): the first default run on a machine spends about fifteen minutes
more writing it (12.5 minutes at a load average of 9), and the kept trees take about 15 GB; it
also makes the emulated build's arm64 root when none is ready (minutes, about 520 MB).
``--quick`` scales every size down for a run of about five minutes, to see that everything
works, not to quote.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.suite.building import BuildingSize
from benchmarks.suite.following import FollowingSize
from benchmarks.suite.publishing import PublishingSize
from benchmarks.suite.serving import ServingSize
from benchmarks.suite.statistics import StatisticsSize

__all__ = ["DEFAULT", "QUICK", "Sizes"]


@dataclass(frozen=True)
class Sizes:
    name: str
    serving: ServingSize
    following: FollowingSize
    statistics: StatisticsSize
    publishing: PublishingSize
    building: BuildingSize
    #: For each kind of scale point (benchmarks/suite/scale.py), its sizes.
    scale: dict[str, tuple[int, ...]]
    #: Runs of each scale point, whose median is its figure ...
    scale_rounds: int
    #: ... but one run at this size and above (a million-event, -line or -wheel run takes
    #: minutes; three of each would not fit the 40 minutes).
    scale_once_from: int | None = None


DEFAULT = Sizes(
    name="default",
    serving=ServingSize(projects=1_000, seconds=10, rounds=5),
    # The naive follower commits once per event (about 150 a second here): 10,000 events keep its
    # rounds to minutes. The follower's own rate at a million is in the scale table.
    following=FollowingSize(events=10_000, rounds=3, reconciled=1_000),
    statistics=StatisticsSize(lines=200_000, rounds=5),
    # Every round writes each file twice (wheelfarm and the minimal script), about 20,000 files
    # each, and deletes them again: this disk discards every freed block as the file goes
    # (about 460 deletions a second), so 2,000 projects spent 15 of the first default run's 38
    # minutes here, most of it deleting.
    publishing=PublishingSize(projects=1_000, rounds=3),
    building=BuildingSize(rounds=5, make_root=True),
    # Regeneration in wheels, ten a project: a million is the README's 100,000 projects.
    scale={kind: (10_000, 100_000, 1_000_000) for kind in ("follow", "regenerate", "ingest")},
    scale_rounds=3,
    scale_once_from=1_000_000,
)

QUICK = Sizes(
    name="quick (QUICK=1: sizes scaled down, for checking, not quoting)",
    serving=ServingSize(projects=100, seconds=2, rounds=3),
    following=FollowingSize(events=1_000, rounds=3, reconciled=200),
    statistics=StatisticsSize(lines=20_000, rounds=3),
    publishing=PublishingSize(projects=50, rounds=3),
    building=BuildingSize(rounds=3, make_root=False),
    # Creating files is this disk's bottleneck (the regeneration needs a tree written first).
    scale={
        "follow": (500, 5_000, 50_000),
        "regenerate": (100, 1_000, 10_000),
        "ingest": (500, 5_000, 50_000),
    },
    scale_rounds=3,
)
