"""Targets and the backlog: a new target's existing releases, targets no builder serves, and
which catch-ups queue urgent builds; on both engines."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from tests.farm.test_queue import CP39_ARM, CP311, NOW, History
from tests.fixtures.fake_upstream import FakeUpstream
from wheelfarm.app.up import _register_local as register_local
from wheelfarm.config import Settings
from wheelfarm.farm.jobs import schedule_project
from wheelfarm.farm.registry import add_builder, add_target, remove_target
from wheelfarm.farm.unserved import (
    UnservedTarget,
    describe_silence,
    refresh_unserved,
    unserved_targets,
)
from wheelfarm.names import canonical
from wheelfarm.publish.incremental import publish_dirty
from wheelfarm.publish.loader import load_site
from wheelfarm.publish.site_pages import render_home
from wheelfarm.publish.tree import Tree
from wheelfarm.store.schema import builders, jobs
from wheelfarm.upstream.follow import CatchUp

UPSTREAM = "https://index.example.org/simple/"


def wheelfarm(
    tmp_path: Path,
    database: str,
    *args: str,
    upstream: str = "http://127.0.0.1:9/simple/",
    **settings: str,
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHEELFARM_")}
    env.update(WHEELFARM_DATABASE=database, WHEELFARM_UPSTREAM=upstream, **settings)
    return subprocess.run(
        [sys.executable, "-m", "wheelfarm", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def queue(engine: Engine) -> dict[tuple[str, str], tuple[str, bool, str | None]]:
    with engine.connect() as connection:
        rows = connection.execute(select(jobs))
        return {(r.project, r.target): (r.state, r.urgent, r.reason) for r in rows}


def test_adding_a_target_queues_existing_releases_by_the_usual_rules(
    engine: Engine, database_url: str, tmp_path
) -> None:
    history = History(engine)
    history("foo", "1.0", "add source file foo-1.0.tar.gz")  # needs a build
    history("bar", "1.0", "add cp311 file bar-1.0-py3-none-any.whl")  # binary only: no job
    history("old", "1.0", "add source file old-1.0.tar.gz")
    history.requires_python("old", "1.0", "old-1.0.tar.gz", ">=3.10")  # excludes Python 3.9
    with engine.begin() as connection:
        add_target(connection, CP311)
        schedule_project(connection, canonical("foo"), [CP311], now=NOW, urgent=True)
    added = wheelfarm(tmp_path, database_url, "targets", "add", CP39_ARM.name)
    assert added.returncode == 0, added.stderr
    assert f"queued 1 build of existing releases for {CP39_ARM.name}" in added.stdout
    assert queue(engine) == {
        ("foo", CP311.name): ("pending", True, None),  # the other target's job is untouched
        ("foo", CP39_ARM.name): ("pending", False, None),  # backlog: fresh releases go first
        ("old", CP39_ARM.name): (
            "skipped",
            False,
            "Requires-Python >=3.10 excludes Python 3.9",
        ),
    }


@pytest.mark.parametrize(
    ("seen_ago", "expected"),
    [
        (None, "no builder has ever said hello for it"),  # no builder for the target at all
        (3 * 3600, "no builder seen for 3 h"),  # its builder went quiet
        (60, None),  # seen a minute ago: served, nothing to say
    ],
)
def test_a_target_with_pending_jobs_and_no_builder_seen_is_named(
    engine: Engine, seen_ago: float | None, expected: str | None
) -> None:
    History(engine)("foo", "1.0", "add source file foo-1.0.tar.gz")
    with engine.begin() as connection:
        add_target(connection, CP39_ARM)
        schedule_project(connection, canonical("foo"), [CP39_ARM], now=NOW)
        if seen_ago is not None:
            add_builder(connection, "pi", now=NOW)
            connection.execute(
                update(builders).values(target=CP39_ARM.name, last_seen=NOW - seen_ago)
            )
        found = unserved_targets(connection, now=NOW, silence_seconds=600)
    lines = [target.describe(NOW) for target in found]
    assert lines == ([f"{CP39_ARM.name}: 1 job pending, {expected}"] if expected else [])


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0 min"), (59 * 60, "59 min"), (3 * 3600 + 5, "3 h"), (50 * 3600, "2 d")],
)
def test_silences_are_shown_in_their_largest_unit(seconds: float, shown: str) -> None:
    assert describe_silence(seconds) == shown


def test_builds_says_which_target_no_builder_serves(
    engine: Engine, database_url: str, tmp_path
) -> None:
    History(engine)("foo", "1.0", "add source file foo-1.0.tar.gz")
    with engine.begin() as connection:
        add_target(connection, CP39_ARM)
        schedule_project(connection, canonical("foo"), [CP39_ARM], now=NOW)
    listed = wheelfarm(tmp_path, database_url, "builds")
    assert listed.returncode == 0, listed.stderr
    assert f"{CP39_ARM.name}: 1 job pending, no builder has ever said hello for it" in (
        listed.stderr
    )
    assert UnservedTarget(CP39_ARM.name, 1, None).describe(NOW) in listed.stderr


@pytest.mark.parametrize(
    ("start", "head", "limit", "near"),
    [
        (0, 5_000_000, 10_000, False),  # the first catch-up: the whole history is backlog
        (4_990_000, 5_000_000, 10_000, True),  # a round of following: fresh
        (4_989_999, 5_000_000, 10_000, False),  # one serial too far behind
    ],
)
def test_only_a_catch_up_near_the_head_is_urgent(
    start: int, head: int, limit: int, near: bool
) -> None:
    assert CatchUp(start_serial=start, target_serial=head).near_head(limit) is near


@pytest.mark.parametrize(
    ("limit", "urgent"),
    [
        ("1", False),  # the catch-up covers more serials than the limit: backlog
        ("10000", True),  # within it: the changelog's fresh releases go first
    ],
)
def test_sync_queues_urgent_builds_only_after_a_catch_up_near_the_head(
    engine: Engine, database_url: str, tmp_path, limit: str, urgent: bool
) -> None:
    with engine.begin() as connection:
        add_target(connection, CP311)
    with FakeUpstream() as upstream:
        upstream.create("demo")
        upstream.add_file("demo", "1.0", "demo-1.0.tar.gz")
        synced = wheelfarm(
            tmp_path,
            database_url,
            "sync",
            upstream=upstream.simple_url,
            WHEELFARM_URGENT_CATCH_UP_SERIALS=limit,
        )
    assert synced.returncode == 0, synced.stderr
    assert queue(engine) == {("demo", CP311.name): ("pending", urgent, None)}


def test_the_home_page_says_since_when_a_target_has_had_no_builder(engine: Engine) -> None:
    History(engine)("foo", "1.0", "add source file foo-1.0.tar.gz")
    with engine.begin() as connection:
        add_target(connection, CP39_ARM)
        schedule_project(connection, canonical("foo"), [CP39_ARM], now=NOW)
        add_builder(connection, "pi", now=NOW)
        connection.execute(update(builders).values(target=CP39_ARM.name, last_seen=NOW))
        assert refresh_unserved(connection, now=NOW + 601, silence_seconds=600) == (CP39_ARM.name,)
        site = load_site(connection)
    line = f"{CP39_ARM.name}: 1 job pending, no builder seen since 2023-11-14 22:13 UTC"
    assert site.unserved == (line,)
    assert f"<li>{line}</li>" in render_home(site).decode()


def _published(tree: Tree) -> tuple[bool, bool]:
    """Whether the home page names an unserved target, and the project page's pending cell."""
    home = (tree.root / "index.html").read_text()
    project = (tree.root / "project" / "foo" / "index.html").read_text()
    return "unserved-targets" in home, 'data-unserved="true"' in project


@pytest.mark.parametrize(
    ("silence_minutes", "shown"),
    [
        (10, True),  # the builder went quiet 20 minutes ago: longer than allowed
        (30, False),  # the setting allows 30: not the default's 10
    ],
)
def test_pages_say_which_builds_wait_for_a_target_no_builder_serves(
    engine: Engine, tmp_path: Path, silence_minutes: float, shown: bool
) -> None:
    """The project page's pending cell and the home page, with the configured silence; both
    change when the builder comes back, though no project changed."""
    History(engine)("foo", "1.0", "add source file foo-1.0.tar.gz")
    quiet_since = time.time() - 20 * 60
    with engine.begin() as connection:
        add_target(connection, CP39_ARM)
        schedule_project(connection, canonical("foo"), [CP39_ARM], now=NOW)
        add_builder(connection, "pi", now=NOW)
        connection.execute(update(builders).values(target=CP39_ARM.name, last_seen=quiet_since))
    tree = Tree(tmp_path / "www", tmp_path / "withdrawn")
    silence = silence_minutes * 60

    def publish() -> None:
        publish_dirty(
            engine, tree, upstream_simple_url=UPSTREAM, base_url="http://x",
            unserved_silence_seconds=silence,
        )  # fmt: skip

    publish()
    assert _published(tree) == (shown, shown)
    if shown:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(quiet_since))
        words = f"no builder for this target seen since {when}"
        assert words in (tree.root / "project" / "foo" / "index.html").read_text()

    with engine.begin() as connection:  # the builder is back
        connection.execute(update(builders).values(last_seen=time.time()))
    publish()
    assert _published(tree) == (False, False)

    with engine.begin() as connection:  # and quiet again, for longer than any allowed silence
        connection.execute(update(builders).values(last_seen=time.time() - 3600))
    publish()
    assert _published(tree) == (True, True)


def test_up_queues_the_existing_releases_for_a_target_it_adds(engine: Engine) -> None:
    History(engine)("foo", "1.0", "add source file foo-1.0.tar.gz")
    with engine.begin() as connection:
        target, _token = register_local(connection, Settings())
        register_local(connection, Settings())  # the next start: the target is known
    assert queue(engine) == {("foo", target.name): ("pending", False, None)}


def test_a_removed_targets_pending_jobs_mark_nothing_at_each_look(engine: Engine) -> None:
    """Its jobs stay pending with no builder, but it has no flag to change: nothing to say."""
    History(engine)("foo", "1.0", "add source file foo-1.0.tar.gz")
    with engine.begin() as connection:
        add_target(connection, CP39_ARM)
        schedule_project(connection, canonical("foo"), [CP39_ARM], now=NOW)
        assert refresh_unserved(connection, now=NOW, silence_seconds=600) == (CP39_ARM.name,)
        remove_target(connection, CP39_ARM.name)
        looks = [refresh_unserved(connection, now=NOW + i, silence_seconds=600) for i in (1, 2)]
        pending = connection.execute(select(jobs.c.state)).scalars().all()
    assert (looks, pending) == ([(), ()], ["pending"])
