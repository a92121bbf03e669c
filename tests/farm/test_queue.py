"""The queue's rules and the claim, on both engines."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import Engine, insert, select

from wheelfarm.farm.jobs import claim_job, expire_leases, schedule_project
from wheelfarm.names import canonical
from wheelfarm.store.changes import Changes, write_changes
from wheelfarm.store.schema import build_files, builds, jobs, skips
from wheelfarm.targets import Target
from wheelfarm.upstream.changelog import ChangelogBatch
from wheelfarm.upstream.events import parse_row
from wheelfarm.upstream.follow import Follower

CP311 = Target.parse("cp311-cp311-linux_x86_64", ("manylinux_2_17_x86_64",))
CP39_ARM = Target.parse("cp39-cp39-linux_armv7l")
NOW = 1_700_000_000.0


class History:
    """Writes changelog events (serials and timestamps counting up) into a store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.serials = itertools.count(1)

    def __call__(self, name: str, version: str | None, action: str) -> None:
        serial = next(self.serials)
        event = parse_row([name, version, 1_600_000_000 + serial, action, serial])
        Follower(self.engine, pages=None).apply_batch(  # type: ignore[arg-type]
            ChangelogBatch(events=[event], last_serial=serial)
        )

    def requires_python(self, name: str, version: str, filename: str, value: str) -> None:
        changes = Changes()
        changes.file(canonical(name), version, filename).requires_python = value
        with self.engine.begin() as connection:
            write_changes(connection, changes)


@pytest.fixture
def history(engine: Engine) -> History:
    return History(engine)


def states(
    engine: Engine, name: str, *targets: Target
) -> dict[tuple[str, str], tuple[str, str | None]]:
    with engine.begin() as connection:
        schedule_project(connection, canonical(name), targets or (CP311,), now=NOW)
        rows = connection.execute(select(jobs).where(jobs.c.project == canonical(name)))
        return {(row.version, row.target): (row.state, row.reason) for row in rows}


def test_a_release_with_an_sdist_needs_a_build(engine: Engine, history: History) -> None:
    history("foo", None, "create")
    history("foo", "1.0", "add source file foo-1.0.tar.gz")
    assert states(engine, "foo") == {("1.0", CP311.name): ("pending", None)}


@pytest.mark.parametrize(
    ("wheel", "target", "covered"),
    [
        ("foo-1.0-py3-none-any.whl", CP311, True),  # pure wheels install everywhere
        ("foo-1.0-cp38-abi3-manylinux_2_17_x86_64.whl", CP311, True),  # abi3 covers later CPython
        ("foo-1.0-cp312-abi3-manylinux_2_17_x86_64.whl", CP311, False),  # but not earlier ones
        ("foo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", CP311, True),  # a platform it accepts
        ("foo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", CP39_ARM, False),  # another platform
        ("foo-1.0-cp311-cp311-win_amd64.whl", CP311, False),
    ],
)
def test_a_wheel_we_hold_that_installs_on_the_target_means_no_build(
    engine: Engine, history: History, wheel: str, target: Target, covered: bool
) -> None:
    history("foo", "1.0", "add source file foo-1.0.tar.gz")
    history("foo", "1.0", f"add cp311 file {wheel}")
    state, reason = states(engine, "foo", target)[("1.0", target.name)]
    if covered:
        assert (state, reason) == ("skipped", f"upstream wheel {wheel} installs on this target")
    else:
        assert state == "pending"


def test_requires_python_that_excludes_the_target_is_skipped_with_the_reason(
    engine: Engine, history: History
) -> None:
    history("foo", "1.0", "add source file foo-1.0.tar.gz")
    history.requires_python("foo", "1.0", "foo-1.0.tar.gz", ">=3.10")
    found = states(engine, "foo", CP311, CP39_ARM)
    assert found[("1.0", CP311.name)] == ("pending", None)
    assert found[("1.0", CP39_ARM.name)] == (
        "skipped",
        "Requires-Python >=3.10 excludes Python 3.9",
    )


def test_binary_only_releases_get_no_job(engine: Engine, history: History) -> None:
    history("foo", "1.0", "add cp311 file foo-1.0-cp311-cp311-win_amd64.whl")
    assert states(engine, "foo") == {}


def test_deleted_release_and_quarantined_project_withdraw_pending_jobs(
    engine: Engine, history: History
) -> None:
    history("foo", "1.0", "add source file foo-1.0.tar.gz")
    history("foo", "2.0", "add source file foo-2.0.tar.gz")
    assert len(states(engine, "foo")) == 2
    history("foo", "1.0", "remove release")
    assert list(states(engine, "foo")) == [("2.0", CP311.name)]
    history("foo", None, "project quarantined")
    assert states(engine, "foo") == {}


def test_operator_skips_a_release_or_a_project(engine: Engine, history: History) -> None:
    history("foo", "1.0", "add source file foo-1.0.tar.gz")
    history("foo", "2.0", "add source file foo-2.0.tar.gz")
    with engine.begin() as connection:
        connection.execute(insert(skips).values(project="foo", version="1.0", reason="too big"))
    found = states(engine, "foo")
    assert found[("1.0", CP311.name)] == ("skipped", "skipped: too big")
    assert found[("2.0", CP311.name)] == ("pending", None)


def test_a_wheel_we_built_marks_the_job_built(engine: Engine, history: History) -> None:
    history("foo", "1.0", "add source file foo-1.0.tar.gz")
    with engine.begin() as connection:
        build = connection.execute(
            insert(builds).values(
                project="foo",
                version="1.0",
                target=CP311.name,
                builder="b1",
                started_at=NOW,
                status="built",
            )
        ).inserted_primary_key
        assert build is not None
        connection.execute(
            insert(build_files).values(
                filename="foo-1.0-cp311-cp311-linux_x86_64.whl",
                build_id=build[0],
                project="foo",
                version="1.0",
                target=CP311.name,
                sha256="0" * 64,
                size=1,
                tags="cp311-cp311-linux_x86_64",
            )
        )
    assert states(engine, "foo") == {("1.0", CP311.name): ("built", None)}


def test_claim_takes_urgent_first_then_the_newest(engine: Engine, history: History) -> None:
    for version in ("1.0", "2.0", "3.0"):
        history("old", version, f"add source file old-{version}.tar.gz")
    history("new", "0.1", "add source file new-0.1.tar.gz")
    with engine.begin() as connection:
        schedule_project(connection, canonical("old"), [CP311], now=NOW)
        schedule_project(connection, canonical("new"), [CP311], now=NOW, urgent=True)
    claimed = []
    with engine.begin() as connection:
        while job := claim_job(connection, CP311.name, "b1", now=NOW, lease_seconds=60):
            claimed.append((job.project, job.version))
    assert claimed == [("new", "0.1"), ("old", "3.0"), ("old", "2.0"), ("old", "1.0")]


def test_a_silent_builder_loses_its_lease(engine: Engine, history: History) -> None:
    history("foo", "1.0", "add source file foo-1.0.tar.gz")
    with engine.begin() as connection:
        schedule_project(connection, canonical("foo"), [CP311], now=NOW)
        first = claim_job(connection, CP311.name, "b1", now=NOW, lease_seconds=60)
        assert first is not None and first.attempts == 1
        assert claim_job(connection, CP311.name, "b2", now=NOW, lease_seconds=60) is None
        assert expire_leases(connection, NOW + 30) == 0
        assert expire_leases(connection, NOW + 61) == 1
        again = claim_job(connection, CP311.name, "b2", now=NOW + 62, lease_seconds=60)
    assert again is not None and (again.version, again.attempts) == ("1.0", 2)


def test_claim_is_for_the_builders_target_only(engine: Engine, history: History) -> None:
    history("foo", "1.0", "add source file foo-1.0.tar.gz")
    with engine.begin() as connection:
        schedule_project(connection, canonical("foo"), [CP39_ARM], now=NOW)
        assert claim_job(connection, CP311.name, "b1", now=NOW, lease_seconds=60) is None
        assert claim_job(connection, CP39_ARM.name, "b1", now=NOW, lease_seconds=60) is not None
