"""Listings for people: builds in version order with totals, and the queue's counts."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, insert

from wheelfarm.cli.builds import build_totals
from wheelfarm.farm.listings import (
    BuildRow,
    QueueCounts,
    builds_under_way,
    list_builds,
    queue_counts,
)
from wheelfarm.names import version_order
from wheelfarm.store.schema import jobs


@pytest.mark.parametrize(
    ("versions", "expected"),
    [
        (["0.9", "0.11", "0.23", "0.10"], ["0.9", "0.10", "0.11", "0.23"]),  # not as text
        (["1.0", "1.0rc1", "1.0.post1", "1.0a1"], ["1.0a1", "1.0rc1", "1.0", "1.0.post1"]),
        (["2.0", "1.0.0", "1.0"], ["1.0", "1.0.0", "2.0"]),  # equal versions keep text order
        (["banana", "1.0", "apple"], ["1.0", "apple", "banana"]),  # invalid ones come last
        (["10", "9", "not-a-version"], ["9", "10", "not-a-version"]),
    ],
)
def test_versions_list_in_pep440_order_with_invalid_ones_last(
    versions: list[str], expected: list[str]
) -> None:
    assert sorted(versions, key=version_order) == expected


def add_jobs(engine: Engine, rows: list[tuple[str, str, str, str, str | None]]) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(jobs),
            [
                {
                    "project": project,
                    "version": version,
                    "target": target,
                    "state": state,
                    "builder": builder,
                    "updated_at": 0.0,
                }
                for project, version, target, state, builder in rows
            ],
        )


def test_builds_list_by_project_then_version_order_then_target(engine: Engine) -> None:
    add_jobs(
        engine,
        [
            ("demo", "0.11", "t1", "built", None),
            ("demo", "0.9", "t2", "failed", None),
            ("demo", "0.9", "t1", "pending", None),
            ("demo", "0.23", "t1", "built", None),
            ("demo", "legacy-1", "t1", "skipped", None),
            ("abc", "10.0", "t1", "building", "local"),
            ("abc", "9.0", "t1", "pending", None),
        ],
    )
    with engine.connect() as connection:
        found = list_builds(connection)
    assert [(r.project, r.version, r.target) for r in found] == [
        ("abc", "9.0", "t1"),
        ("abc", "10.0", "t1"),
        ("demo", "0.9", "t1"),
        ("demo", "0.9", "t2"),
        ("demo", "0.11", "t1"),
        ("demo", "0.23", "t1"),
        ("demo", "legacy-1", "t1"),
    ]
    assert build_totals(found) == "7 builds: 2 pending, 1 building, 2 built, 1 failed, 1 skipped"


def row(status: str) -> BuildRow:
    return BuildRow("p", "1.0", "t", status, ())


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], "0 builds"),
        (["built"], "1 build: 1 built"),
        (["failed", "built", "failed"], "3 builds: 1 built, 2 failed"),  # in queue order
        (["odd", "built"], "2 builds: 1 built, 1 odd"),  # a state we do not know comes last
    ],
)
def test_build_totals_say_how_many_of_each(statuses: list[str], expected: str) -> None:
    assert build_totals([row(s) for s in statuses]) == expected


def test_queue_counts_and_builds_under_way_by_up_builders(engine: Engine) -> None:
    add_jobs(
        engine,
        [
            ("a", "1", "t", "pending", None),
            ("b", "1", "t", "building", "local"),
            ("c", "1", "t", "building", "local-aarch64"),
            ("d", "1", "t", "building", "pi1"),  # a remote builder: up does not end its build
            ("e", "1", "t", "built", "local"),
            ("f", "1", "t", "failed", "local"),
            ("g", "1", "t", "skipped", None),
        ],
    )
    with engine.connect() as connection:
        counts = queue_counts(connection)
        assert builds_under_way(connection, "local") == 2
        assert builds_under_way(connection, "pi1") == 1
        assert builds_under_way(connection, "nobody") == 0
    assert counts == QueueCounts(pending=1, building=3, built=1, failed=1, skipped=1)
    assert (counts.queued, counts.finished) == (4, 2)
