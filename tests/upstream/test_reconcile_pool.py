"""Reconcile with a pool of page readers: the same store as one reader, and polite as one."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, delete, select

from tests.fixtures.fake_upstream import FakeUpstream
from tests.upstream.conftest import POLICY, TIMEOUT
from wheelfarm.http import SharedPause, new_client
from wheelfarm.names import NormalizedName
from wheelfarm.store.schema import metadata
from wheelfarm.upstream.follow import Follower
from wheelfarm.upstream.pages import PageClient
from wheelfarm.upstream.prefetch import PagePrefetcher


def script_many_projects(upstream: FakeUpstream, count: int = 40) -> None:
    """Projects that each take a different path: plain, yanked, shrunk, deleted, hidden."""
    for i in range(count):
        name = f"Proj-{i:02d}"
        upstream.create(name)
        upstream.add_file(name, "1.0", f"proj_{i:02d}-1.0.tar.gz")
        upstream.add_file(name, "0.9", f"proj_{i:02d}-0.9-py3-none-any.whl")
        upstream.set_summary(name, f"project number {i}")
        match i % 5:
            case 1:
                upstream.yank(name, "1.0", reason="broken")
            case 2:
                upstream.remove_file(name, "0.9", f"proj_{i:02d}-0.9-py3-none-any.whl")
            case 3:
                upstream.remove_project(name)
            case 4:
                upstream.quarantine_project(name)


def stored_state(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, in key order."""
    with engine.connect() as connection:
        return {
            table.name: [
                dict(row)
                for row in connection.execute(
                    select(table).order_by(*table.primary_key.columns)
                ).mappings()
            ]
            for table in metadata.sorted_tables
        }


def reset(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(delete(table))


def follow_and_reconcile(follower: Follower, workers: int) -> dict[str, list[dict[str, Any]]]:
    reset(follower.engine)
    follower.clock = lambda: 1_800_000_000.0  # the upstream head is stored with the time read
    follower.catch_up()
    results = follower.sync_projects(follower.dirty_projects(), workers=workers)
    assert [r.error for r in results if r.error] == []
    assert follower.dirty_projects() == []
    return stored_state(follower.engine)


def test_pooled_reconcile_stores_exactly_what_sequential_stores(
    upstream: FakeUpstream, follower: Follower
) -> None:
    script_many_projects(upstream)
    sequential = follow_and_reconcile(follower, workers=1)
    pooled = follow_and_reconcile(follower, workers=8)
    assert pooled == sequential
    assert len(sequential["projects"]) == 40 and sequential["files"]


def test_pooled_reconcile_rides_out_rate_limits(upstream: FakeUpstream, follower: Follower) -> None:
    script_many_projects(upstream)
    expected = follow_and_reconcile(follower, workers=1)
    pages_before = len(upstream.requests)
    upstream.fail_next("ratelimit", 6, where="pages")  # 429 with Retry-After: 1
    assert follow_and_reconcile(follower, workers=8) == expected
    # Every page was read once more than 429s were served: the injected faults were hit.
    assert len(upstream.requests) > pages_before


def test_results_come_back_in_the_order_asked(upstream: FakeUpstream, follower: Follower) -> None:
    script_many_projects(upstream, count=12)
    names = [f"proj-{i:02d}" for i in reversed(range(12))] + ["never-heard-of"]
    results = follower.sync_projects(names, workers=4)
    assert [r.name for r in results] == names
    # A deleted project's page is gone; a quarantined one's is there, saying so (PEP 792).
    assert [r.found for r in results] == [i % 5 != 3 for i in reversed(range(12))] + [False]


def test_a_stale_page_is_refused_by_the_pool_as_by_one_reader(
    upstream: FakeUpstream, follower: Follower
) -> None:
    upstream.create("bar")
    upstream.create("foo")
    lagging = upstream.add_file("foo", "1.0", "foo-1.0.tar.gz")
    upstream.add_file("foo", "1.0", "foo-1.0-py3-none-any.whl")
    upstream.page_lag = lagging  # foo's page is from before its wheel; bar's is current
    follower.catch_up()
    results = {r.name: r for r in follower.sync_projects(["foo", "bar"], workers=8)}
    assert results[NormalizedName("foo")].error is not None
    assert "older than the event" in (results[NormalizedName("foo")].error or "")
    assert results[NormalizedName("bar")].error is None
    assert follower.dirty_projects() == ["foo"]
    upstream.page_lag = None
    results = {r.name: r for r in follower.sync_projects(["foo", "bar"], workers=8)}
    assert [r.error for r in results.values()] == [None, None]
    assert follower.dirty_projects() == []


class FakeTime:
    """A clock that moves only when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(
    ("holds", "elapsed", "expected_wait"),
    [
        ([], 0.0, 0.0),  # never held: no wait
        ([3.0], 0.0, 3.0),  # held: wait it out
        ([3.0], 1.0, 2.0),  # part of it already passed
        ([3.0], 5.0, 0.0),  # all of it passed
        ([3.0, 1.0], 0.0, 3.0),  # a shorter hold does not cut a longer one short
        ([1.0, 3.0], 0.0, 3.0),  # a longer hold extends a shorter one
    ],
)
def test_shared_pause_waits_out_the_longest_hold(
    holds: list[float], elapsed: float, expected_wait: float
) -> None:
    time = FakeTime()
    pause = SharedPause(clock=time.clock, sleep=time.sleep)
    for seconds in holds:
        pause.hold(seconds)
    time.now += elapsed
    assert pause.wait() == expected_wait
    assert pause.wait() == 0.0  # and once over, it is over


def test_a_rate_limited_page_holds_every_reader_of_the_client(upstream: FakeUpstream) -> None:
    upstream.create("foo")
    upstream.create("bar")
    time = FakeTime()
    with new_client(TIMEOUT) as client:
        pages = PageClient(
            upstream.simple_url,
            lambda name: None,
            client,
            POLICY,
            SharedPause(clock=time.clock, sleep=time.sleep),
        )
        upstream.fail_next("ratelimit", 1, where="pages")  # Retry-After: 1, capped at max_wait
        assert pages.fetch(NormalizedName("foo")) is not None  # waited on the pause, then read
        assert time.slept == [pytest.approx(POLICY.max_wait)]
        # The pause is the client's: a pool shares it. Held now, the next read waits too.
        pages.pause.hold(7.0)
        with PagePrefetcher(pages, workers=4) as reader:
            assert reader.read(NormalizedName("bar")).result() is not None
        assert time.slept == [pytest.approx(POLICY.max_wait), pytest.approx(7.0)]


def test_a_pool_needs_a_reader(upstream: FakeUpstream) -> None:
    with new_client(TIMEOUT) as client:
        pages = PageClient(upstream.simple_url, lambda name: None, client, POLICY)
        with pytest.raises(ValueError, match="at least 1"):
            PagePrefetcher(pages, workers=0)
