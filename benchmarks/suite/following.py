"""Following: the changelog replayed by wheelfarm's follower and by the naive follower.

The naive follower is what a developer would write first, and the honest baseline: read the
changelog, and apply each event in serial order in a transaction of its own, with the same
merge code. wheelfarm's follower folds each answer of the changelog (thousands of events) into
register updates written in one transaction, and reads ahead in a child process when far behind.
Both replay the same synthetic changelog from the fake upstream into a fresh SQLite file.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.suite.measure import Measurement, NotMeasured, interleave, not_measured
from benchmarks.suite.upstream import fake_changelog
from wheelfarm.http import RetryPolicy, new_client
from wheelfarm.store.database import open_store
from wheelfarm.upstream.changelog import ChangelogBatch, ChangelogClient
from wheelfarm.upstream.follow import Follower
from wheelfarm.upstream.pages import PageClient
from wheelfarm.upstream.prefetch import ChangelogSource

__all__ = ["FollowingSize", "follow_naively", "follow_wheelfarm", "measure_following"]

AREA = "following"
POLICY = RetryPolicy(retries=3, initial_wait=0.5)


@dataclass(frozen=True)
class FollowingSize:
    events: int
    rounds: int


def follow_wheelfarm(database: str, changelog: str) -> int:
    """wheelfarm's catch-up from serial 0; returns the events applied."""
    engine = open_store(database)
    try:
        with new_client(60) as client:
            pages = PageClient(changelog, lambda name: None, client, POLICY)  # no reconcile
            follower = Follower(engine, pages, ChangelogSource(changelog, 120, POLICY))
            return follower.catch_up().events
    finally:
        engine.dispose()


def follow_naively(database: str, changelog: str) -> int:
    """Each event applied alone, in serial order, one transaction each; returns the events."""
    engine = open_store(database)
    applied = 0
    try:
        with new_client(60) as client:
            reader = ChangelogClient(changelog, client, POLICY)
            follower = Follower(engine, PageClient(changelog, lambda name: None, client, POLICY))
            target = reader.last_serial()
            serial = 0
            while serial < target:
                batch = reader.since(serial)
                if batch.last_serial <= serial:
                    break
                for event in sorted(batch.events, key=lambda one: one.serial):
                    single = ChangelogBatch(events=[event], last_serial=event.serial)
                    applied += follower.apply_batch(single)
                serial = batch.last_serial
    finally:
        engine.dispose()
    return applied


def _rate(how: str, changelog: str, events: int, scratch: Path) -> float:
    database = f"sqlite:///{tempfile.mkdtemp(dir=scratch)}/follow.sqlite"
    began = time.perf_counter()
    applied = (follow_wheelfarm if how == "wheelfarm" else follow_naively)(database, changelog)
    seconds = time.perf_counter() - began
    if applied != events:
        raise NotMeasured(f"the {how} follower applied {applied} of {events} events")
    return events / seconds


def measure_following(size: FollowingSize) -> list[Measurement]:
    """Events per second, wheelfarm against the naive follower, interleaved."""
    figure = f"changelog replay into SQLite, {size.events:,} events"
    with tempfile.TemporaryDirectory(prefix="bench-follow-") as temp:
        scratch = Path(temp)
        with fake_changelog(size.events) as changelog:
            race = interleave(
                size.rounds,
                {
                    "wheelfarm": lambda: _rate("wheelfarm", changelog, size.events, scratch),
                    "naive follower": lambda: _rate("naive", changelog, size.events, scratch),
                },
            )
    return [
        race.row(AREA, figure, "events/s", "wheelfarm", "naive follower"),
        not_measured(
            AREA,
            "reconcile: project pages read per second",
            "pages/s",
            "bandersnatch",
            "bandersnatch mirrors files, it keeps no register of pages to reconcile; "
            "its page reads against the fake upstream are not wired up yet",
        ),
    ]
