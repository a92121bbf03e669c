"""Rebuilds in the queue: which jobs go back, under which build number, and what settles them."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, Engine, insert, select, update

from tests.farm.test_queue import CP39_ARM, CP311, NOW, History
from wheelfarm.errors import NotFound
from wheelfarm.farm.jobs import claim_job, schedule_project, settle_release
from wheelfarm.farm.rebuilds import rebuild_project, rebuild_target
from wheelfarm.farm.registry import add_target
from wheelfarm.names import canonical
from wheelfarm.store.schema import build_files, builds, jobs

WHEEL = "foo-1.0-cp311-cp311-linux_x86_64.whl"


def built(connection: Connection, version: str, filename: str, *, started_at: float = NOW) -> None:
    """Record a build of foo ``version`` for CP311 that published ``filename``."""
    build = connection.execute(
        insert(builds).values(
            project="foo",
            version=version,
            target=CP311.name,
            builder="b1",
            started_at=started_at,
            status="built",
        )
    ).inserted_primary_key
    assert build is not None
    connection.execute(
        insert(build_files).values(
            filename=filename,
            build_id=build[0],
            project="foo",
            version=version,
            target=CP311.name,
            sha256="0" * 64,
            size=1,
            tags="cp311-cp311-linux_x86_64",
        )
    )


@pytest.fixture
def foo(engine: Engine) -> Engine:
    """foo 1.0 (built for CP311), 2.0 (failed) and 3.0 (pending), CP311 configured."""
    history = History(engine)
    for version in ("1.0", "2.0", "3.0"):
        history("foo", version, f"add source file foo-{version}.tar.gz")
    with engine.begin() as connection:
        add_target(connection, CP311)
        built(connection, "1.0", WHEEL)
        schedule_project(connection, canonical("foo"), [CP311], now=NOW)
        connection.execute(
            update(jobs).where(jobs.c.version == "2.0").values(state="failed", reason="boom")
        )
    return engine


def job(engine: Engine, version: str) -> tuple[str, int, bool, str | None]:
    with engine.connect() as connection:
        row = connection.execute(select(jobs).where(jobs.c.version == version)).one()
    return row.state, row.build_number, row.urgent, row.rebuild_reason


def test_a_built_job_goes_back_under_the_next_build_number_and_a_failed_one_as_it_was(
    foo: Engine,
) -> None:
    with foo.begin() as connection:
        done = rebuild_project(
            connection, canonical("foo"), None, None, reason="new compiler", now=NOW
        )
    assert (done.failed, done.renumbered) == (1, (("foo", "1.0", CP311.name, 1),))
    assert job(foo, "1.0") == ("pending", 1, True, "new compiler")
    assert job(foo, "2.0") == ("pending", 0, True, None)
    assert job(foo, "3.0")[:2] == ("pending", 0)  # pending already: untouched, not urgent
    assert job(foo, "3.0")[2] is False


def test_the_old_wheel_does_not_settle_a_rebuild_but_a_wheel_of_its_number_does(
    foo: Engine,
) -> None:
    with foo.begin() as connection:
        rebuild_project(connection, canonical("foo"), "1.0", None, reason=None, now=NOW)
        schedule_project(connection, canonical("foo"), [CP311], now=NOW)  # the follower's pass
        assert settle_release(connection, "foo", "1.0", [CP311]) == 0
    assert job(foo, "1.0")[:2] == ("pending", 1)
    with foo.begin() as connection:
        claimed = claim_job(connection, CP311.name, "b1", now=NOW, lease_seconds=60)
        assert claimed is not None and (claimed.version, claimed.build_number) == ("1.0", 1)
        built(connection, "1.0", "foo-1.0-1-cp311-cp311-linux_x86_64.whl")
        connection.execute(update(jobs).where(jobs.c.version == "1.0").values(state="pending"))
        assert settle_release(connection, "foo", "1.0", [CP311]) == 1
    assert job(foo, "1.0")[:2] == ("built", 1)


def test_rebuilding_again_takes_the_number_after_the_highest_wheel(foo: Engine) -> None:
    with foo.begin() as connection:
        built(connection, "1.0", "foo-1.0-4-cp311-cp311-linux_x86_64.whl")  # e.g. imported
        done = rebuild_project(connection, canonical("foo"), "1.0", None, reason=None, now=NOW)
    assert done.renumbered == (("foo", "1.0", CP311.name, 5),)


@pytest.mark.parametrize(
    ("version", "target", "missing"),
    [
        ("9.9", None, "release foo 9.9 does not exist"),  # a typo in the version
        (None, "cp39-cp39-linux_armv7l", "target 'cp39-cp39-linux_armv7l' does not exist"),
    ],
)
def test_an_unknown_release_or_target_is_refused_and_changes_nothing(
    foo: Engine, version: str | None, target: str | None, missing: str
) -> None:
    with foo.begin() as connection, pytest.raises(NotFound, match=missing):
        rebuild_project(connection, canonical("foo"), version, target, reason=None, now=NOW)
    assert job(foo, "1.0")[:2] == ("built", 0)


@pytest.mark.parametrize(
    ("built_before", "rebuilt"),
    [
        (None, ["1.0", "2.0"]),  # every built release of the target
        (NOW + 1800, ["1.0"]),  # only the wheels built before the cut-off
        (NOW - 1, []),  # nothing was built that early
    ],
)
def test_a_mass_rebuild_takes_the_targets_built_jobs_into_the_background(
    foo: Engine, built_before: float | None, rebuilt: list[str]
) -> None:
    with foo.begin() as connection:
        add_target(connection, CP39_ARM)
        built(connection, "2.0", "foo-2.0-cp311-cp311-linux_x86_64.whl", started_at=NOW + 3600)
        connection.execute(update(jobs).where(jobs.c.version == "2.0").values(state="built"))
        done = rebuild_target(
            connection, CP311.name, built_before=built_before, reason="gcc 13.1", now=NOW
        )
    assert sorted(version for _, version, _, _ in done.renumbered) == rebuilt
    assert done.failed == 0
    for version in rebuilt:
        assert job(foo, version) == ("pending", 1, False, "gcc 13.1")  # behind fresh releases
