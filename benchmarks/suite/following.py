"""Following: the changelog replayed by wheelfarm's follower and by the naive follower.

The naive follower is what a developer would write first, and the honest baseline: read the
changelog, and apply each event in serial order in a transaction of its own, with the same
merge code. wheelfarm's follower folds each answer of the changelog (thousands of events) into
register updates written in one transaction, and reads ahead in a child process when far behind.
Both replay the same synthetic changelog from the fake upstream into a fresh SQLite file.

The reconcile figure: after a catch-up, wheelfarm reads the pages of the projects the changelog
touched (the PEP 691 page and the JSON API page), compares them with the store and applies the
differences; the comparison is a loop that only GETs the same pages (the HTTP floor). The
same reconcile from a distant upstream, against bandersnatch's page reads, is in
benchmarks/suite/reconcile.py.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from packaging.utils import NormalizedName

from benchmarks.suite.measure import Measurement, NotMeasured, Race, interleave
from benchmarks.suite.reconcile import DistantSize, measure_distant_reconcile
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
PEP691_JSON = "application/vnd.pypi.simple.v1+json"  # what pip and the follower ask for


@dataclass(frozen=True)
class FollowingSize:
    events: int
    rounds: int
    #: Projects whose pages the reconcile figure reads (two pages each).
    reconciled: int


def _pages(changelog: str, client: httpx.Client) -> PageClient:
    base = changelog.removesuffix("/pypi")
    return PageClient(f"{base}/simple/", f"{base}/pypi/{{}}/json".format, client, POLICY)


def _reconcile(database: str, changelog: str, names: list[NormalizedName]) -> float:
    """wheelfarm reading, diffing and applying the projects' pages; returns pages/s."""
    engine = open_store(database)
    try:
        with new_client(60) as client:
            follower = Follower(engine, _pages(changelog, client))
            began = time.perf_counter()
            results = follower.sync_projects(names)
            seconds = time.perf_counter() - began
    finally:
        engine.dispose()
    failed = [result.name for result in results if result.error]
    if failed:
        raise NotMeasured(f"{len(failed)} page reads failed, e.g. {failed[0]}")
    pages = sum(2 if result.found else 1 for result in results)  # a 404 ends a project's reads
    return pages / seconds


def _fetch_only(changelog: str, names: list[NormalizedName]) -> float:
    """The least a reconcile must do: GET the same pages (the JSON API page only when the
    project's page was found, as wheelfarm does); returns pages/s."""
    base = changelog.removesuffix("/pypi")
    pages = 0
    with new_client(60) as client:
        began = time.perf_counter()
        for name in names:
            page = client.get(f"{base}/simple/{name}/", headers={"Accept": PEP691_JSON})
            pages += 1
            if page.status_code == 404:
                continue
            page.raise_for_status()
            api = client.get(f"{base}/pypi/{name}/json", headers={"Accept": "application/json"})
            api.raise_for_status()
            pages += 1
        return pages / (time.perf_counter() - began)


def _reconcile_race(changelog: str, size: FollowingSize, scratch: Path) -> Race:
    """Each wheelfarm round starts from a copy of one caught-up store, so each has the same
    work; the minimal loop reads the same pages from the same fake upstream."""
    caught_up = scratch / "caught-up.sqlite"
    follow_wheelfarm(f"sqlite:///{caught_up}", changelog)
    engine = open_store(f"sqlite:///{caught_up}")
    with new_client(60) as client:
        names = Follower(engine, _pages(changelog, client)).dirty_projects()[: size.reconciled]
    engine.dispose()

    def ours() -> float:
        copy = Path(tempfile.mkdtemp(dir=scratch)) / "store.sqlite"
        shutil.copyfile(caught_up, copy)
        return _reconcile(f"sqlite:///{copy}", changelog, names)

    return interleave(
        size.rounds, {"wheelfarm": ours, "GET only": lambda: _fetch_only(changelog, names)}
    )


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
    reconcile = f"reconcile: project pages read, diffed, applied ({size.reconciled:,} projects)"
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
            pages = _reconcile_race(changelog, size, scratch)
    return [
        race.row(AREA, figure, "events/s", "wheelfarm", "naive follower"),
        pages.row(AREA, reconcile, "pages/s", "wheelfarm", "GET only"),
        measure_distant_reconcile(DistantSize(size.reconciled, size.rounds)),
    ]
