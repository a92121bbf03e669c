"""A page answering 404: a deletion only when the changelog says so, or after a grace period.

The upstream's cache can answer 404 for a project created moments ago. These tests reproduce it
with the fake's ``notfound`` fault (a cached 404 for the next reads) and ``page_lag`` (pages as
of an older serial), on a follower whose clock stands a few seconds after the events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.fake_upstream import START_TIMESTAMP, FakeUpstream
from tests.upstream.helpers import files_of, script_early_remove, view
from wheelfarm.app.parts import open_follower
from wheelfarm.config import Settings
from wheelfarm.store.views import ProjectStatus, live_project_names
from wheelfarm.upstream.follow import Follower

GRACE = 600.0
STALE_WAITS = [5.0, 10.0, 15.0]  # sync_projects' default backoff for a stale page


class Clock:
    """The follower's clock, set by the test; and the waits the page readers were asked for."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now


def clocked(follower: Follower, clock: Clock) -> Follower:
    """The fixture's follower, with ``clock`` for its clock and its readers' sleep."""
    return Follower(
        follower.engine,
        follower.pages,
        follower.changelog,
        clock=clock,
        sleep=clock.sleeps.append,
        missing_page_grace=GRACE,
    )


def created(upstream: FakeUpstream, follower: Follower) -> None:
    """A project created (and given a file) upstream; the changelog applied, no page read yet."""
    upstream.create("foo")
    upstream.add_file("foo", "1.0", "foo-1.0.tar.gz")
    follower.catch_up()


def released(upstream: FakeUpstream, follower: Follower) -> None:
    """A project we hold reconciled gets a new release; the changelog applied."""
    created(upstream, follower)
    follower.sync_projects(["foo"])
    upstream.add_file("foo", "2.0", "foo-2.0.tar.gz")
    follower.catch_up()


FRESH_EVENTS: dict[str, Callable[[FakeUpstream, Follower], None]] = {
    "just-created": created,
    "new-release": released,
}


@pytest.mark.parametrize("reads_404", [1, 3], ids=["one-404", "three-404s"])
@pytest.mark.parametrize("script", FRESH_EVENTS.values(), ids=FRESH_EVENTS.keys())
def test_a_cached_404_for_a_project_the_changelog_just_touched_is_waited_out(
    upstream: FakeUpstream,
    follower: Follower,
    script: Callable[[FakeUpstream, Follower], None],
    reads_404: int,
) -> None:
    clock = Clock(START_TIMESTAMP + 30)
    follower = clocked(follower, clock)
    script(upstream, follower)
    clock.sleeps.clear()
    upstream.fail_next("notfound", reads_404, where="pages")
    (result,) = follower.sync_projects(follower.dirty_projects())
    assert (result.error, result.found) == (None, True)
    assert clock.sleeps == STALE_WAITS[:reads_404]  # read again with the stale-page backoff
    assert view(follower, "foo").status is ProjectStatus.LIVE
    assert set(files_of(follower, "foo")["1.0"]) == {"foo-1.0.tar.gz"}  # its releases followed
    assert follower.dirty_projects() == []


def test_a_cached_404_outlasting_the_retries_leaves_the_project_live_for_the_next_reconcile(
    upstream: FakeUpstream, follower: Follower
) -> None:
    clock = Clock(START_TIMESTAMP + 30)
    follower = clocked(follower, clock)
    created(upstream, follower)
    upstream.fail_next("notfound", 5, where="pages")
    (first,) = follower.sync_projects(follower.dirty_projects())
    assert first.error is not None
    assert "page answers 404, but the changelog's 'add source file" in first.error
    assert "taken as a cache's stale 404" in first.error
    assert view(follower, "foo").status is ProjectStatus.LIVE
    assert follower.dirty_projects() == ["foo"]
    clock.now += 60  # the next round: one more cached 404, then the page
    (second,) = follower.sync_projects(follower.dirty_projects())
    assert second.error is None
    assert files_of(follower, "foo") == {"1.0": ["foo-1.0.tar.gz"]}
    assert follower.dirty_projects() == []


def removed(upstream: FakeUpstream, follower: Follower) -> None:
    """A project we hold reconciled is removed upstream (``remove project``)."""
    created(upstream, follower)
    follower.sync_projects(["foo"])
    upstream.remove_project("foo")
    follower.catch_up()


def removed_in_early_history(upstream: FakeUpstream, follower: Follower) -> None:
    """A bare ``remove`` timestamped before its create: the events leave the project live."""
    script_early_remove(upstream)
    follower.catch_up()
    assert view(follower, "early").status is ProjectStatus.LIVE


REMOVALS: dict[str, tuple[Callable[[FakeUpstream, Follower], None], str]] = {
    "remove-project": (removed, "foo"),
    "early-bare-remove": (removed_in_early_history, "early"),
}


@pytest.mark.parametrize(("script", "name"), REMOVALS.values(), ids=REMOVALS.keys())
def test_a_project_removed_in_the_changelog_is_removed_at_once(
    upstream: FakeUpstream,
    follower: Follower,
    script: Callable[[FakeUpstream, Follower], None],
    name: str,
) -> None:
    clock = Clock(START_TIMESTAMP)
    follower = clocked(follower, clock)
    script(upstream, follower)
    clock.now = max(event.timestamp for event in upstream.events) + 5  # well within the grace
    clock.sleeps.clear()
    (result,) = follower.sync_projects(follower.dirty_projects())
    assert (result.name, result.error, result.found) == (name, None, False)
    assert clock.sleeps == []  # no waiting
    assert view(follower, name).status is ProjectStatus.DELETED
    assert follower.dirty_projects() == []


def test_a_404_that_outlives_the_grace_with_no_removal_deletes_and_says_so(
    upstream: FakeUpstream, follower: Follower, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(START_TIMESTAMP + 30)
    follower = clocked(follower, clock)
    created(upstream, follower)
    upstream.page_lag = 0  # the pages never show the project
    (within,) = follower.sync_projects(follower.dirty_projects())
    assert within.error is not None and "stale 404" in within.error
    assert view(follower, "foo").status is ProjectStatus.LIVE
    clock.now = upstream.events[-1].timestamp + GRACE  # the grace is over
    with caplog.at_level(logging.WARNING, logger="wheelfarm.upstream.missing"):
        (after,) = follower.sync_projects(follower.dirty_projects())
    assert (after.error, after.found) == (None, False)
    assert view(follower, "foo").status is ProjectStatus.DELETED
    assert follower.dirty_projects() == []
    (line,) = [r.getMessage() for r in caplog.records if r.name == "wheelfarm.upstream.missing"]
    assert line == (
        "foo: page still answers 404 600 s after the changelog's 'add source file "
        "foo-1.0.tar.gz' at serial 2, with no removal since (grace 600 s): taken as deleted "
        "upstream"
    )


def test_without_a_changelog_a_404_is_believed_at_once(
    upstream: FakeUpstream, follower: Follower
) -> None:
    # Named projects: no journal stands behind what we hold, so nothing contradicts the 404.
    clock = Clock(START_TIMESTAMP + 30)
    follower = clocked(follower, clock)
    upstream.create("foo")
    upstream.add_file("foo", "1.0", "foo-1.0.tar.gz")
    follower.sync_projects(["foo"])
    upstream.fail_next("notfound", 1, where="pages")
    (result,) = follower.sync_projects(["foo"])
    assert (result.error, result.found, clock.sleeps) == (None, False, [])
    assert view(follower, "foo").status is ProjectStatus.DELETED


@pytest.mark.parametrize("fix", [False, True], ids=["audit", "audit-fix"])
def test_a_full_reread_takes_a_fresh_projects_404_as_stale_too(
    upstream: FakeUpstream, follower: Follower, fix: bool
) -> None:
    clock = Clock(START_TIMESTAMP + 30)
    follower = clocked(follower, clock)
    created(upstream, follower)
    follower.sync_projects(follower.dirty_projects())
    with follower.engine.connect() as connection:
        everything = list(live_project_names(connection))
    upstream.fail_next("notfound", 4, where="pages")  # every read of this audit
    (result,) = follower.sync_projects(everything, fix=fix)
    assert result.error is not None and "stale 404" in result.error
    assert result.differences == []  # not reported as "project gone upstream"
    assert files_of(follower, "foo") == {"1.0": ["foo-1.0.tar.gz"]}


def test_the_grace_setting_reaches_the_follower(tmp_path: Path) -> None:
    settings = Settings(
        upstream="http://127.0.0.1:9/simple/", data_dir=tmp_path, missing_page_grace_seconds=42.0
    )
    with open_follower(settings, with_changelog=False) as follower:
        assert follower.missing_page_grace == 42.0
