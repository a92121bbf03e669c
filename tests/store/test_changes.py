"""Register updates: rows in the tables' column order, idempotent writes, the larger key wins."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest
from sqlalchemy import Engine, Table, select

from wheelfarm.names import NormalizedName
from wheelfarm.store.changes import (
    Changes,
    FileChange,
    ProjectChange,
    ReleaseChange,
    table_rows,
    write_changes,
)
from wheelfarm.store.schema import files, projects, releases
from wheelfarm.upstream.events import parse_row

FOO = NormalizedName("foo")
TIMESTAMP = 1_600_000_000


def names(change_class: type) -> list[str]:
    return [f.name for f in fields(change_class)]


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (projects, ["name", *names(ProjectChange)]),
        (releases, ["project", "version", *names(ReleaseChange), "prerelease"]),
        (files, ["project", "filename", *names(FileChange)]),
    ],
    ids=["projects", "releases", "files"],
)
def test_change_fields_are_in_the_tables_column_order(table: Table, expected: list[str]) -> None:
    """``table_rows`` builds positional tuples from the fields: the orders must agree."""
    assert [column.name for column in table.c] == expected


def history() -> Changes:
    """A little of everything: a create, releases, files, a removal, a yank, a quarantine."""
    rows: list[list[Any]] = [
        ["Foo", None, TIMESTAMP, "create", 1],
        ["Foo", "1.0", TIMESTAMP + 1, "new release", 2],
        ["Foo", "1.0", TIMESTAMP + 2, "add source file foo-1.0.tar.gz", 3],
        ["Foo", "1.0", TIMESTAMP + 3, "add py3 file foo-1.0-py3-none-any.whl", 4],
        ["Foo", "1.0", TIMESTAMP + 4, "remove file foo-1.0.tar.gz", 5],
        ["Foo", "2.0b1", TIMESTAMP + 5, "new release", 6],
        ["Foo", "2.0b1", TIMESTAMP + 6, "yank release", 7],
        ["Foo", "2.0b1", TIMESTAMP + 7, "release quarantined", 8],
        ["Bar", None, TIMESTAMP + 8, "create", 9],
        ["Bar", None, TIMESTAMP + 9, "remove project", 10],
        ["Foo", None, TIMESTAMP + 10, "add Owner alice", 11],
    ]
    changes = Changes()
    changes.add_events(parse_row(row) for row in rows)
    return changes


def test_table_rows_match_the_changes_column_by_column() -> None:
    rows = table_rows(history())
    release = {
        (row[0], row[1]): dict(zip([c.name for c in releases.c], row, strict=True))
        for row in rows.releases
    }
    beta = release[(FOO, "2.0b1")]
    assert (beta["yanked"], beta["quarantined"], beta["prerelease"]) == (True, True, True)
    assert release[(FOO, "1.0")]["prerelease"] is False
    file = {row[1]: dict(zip([c.name for c in files.c], row, strict=True)) for row in rows.files}
    assert (file["foo-1.0.tar.gz"]["version"], file["foo-1.0.tar.gz"]["python_version"]) == (
        "1.0",
        "source",
    )
    assert file["foo-1.0.tar.gz"]["removed_key"] > file["foo-1.0.tar.gz"]["live_key"] > 0
    project = {
        row[0]: dict(zip([c.name for c in projects.c], row, strict=True)) for row in rows.projects
    }
    assert (project["foo"]["registered_name"], project["foo"]["last_serial"]) == ("Foo", 8)
    assert project["bar"]["removed_key"] > project["bar"]["live_key"] > 0


def snapshot(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    with engine.connect() as connection:
        return {
            table.name: [
                dict(row)
                for row in connection.execute(
                    select(table).order_by(*table.primary_key.columns)
                ).mappings()
            ]
            for table in (projects, releases, files)
        }


def write(engine: Engine, changes: Changes) -> None:
    with engine.begin() as connection:
        write_changes(connection, changes)


def test_writing_the_same_changes_twice_leaves_the_same_rows(engine: Engine) -> None:
    write(engine, history())
    once = snapshot(engine)
    write(engine, history())
    assert snapshot(engine) == once
    assert [len(rows) for rows in once.values()] == [2, 2, 2]


def yank(key: int, yanked: bool, reason: str | None) -> Changes:
    changes = Changes()
    changes.release(FOO, "1.0").set_yank(key, yanked, reason)
    return changes


def register(key: int, spelling: str) -> Changes:
    changes = Changes()
    changes.project(FOO).register(key, spelling)
    return changes


def quarantine(key: int, quarantined: bool) -> Changes:
    changes = Changes()
    changes.release(FOO, "1.0").set_quarantine(key, quarantined)
    return changes


@pytest.mark.parametrize("larger_first", [True, False], ids=["larger-first", "smaller-first"])
@pytest.mark.parametrize(
    ("larger", "smaller", "table", "expected"),
    [
        (
            yank(10, True, "broken"),
            yank(5, False, None),
            releases,
            {"yank_key": 10, "yanked": True, "yanked_reason": "broken"},
        ),
        (
            yank(10, False, None),
            yank(5, True, "stale"),
            releases,
            {"yank_key": 10, "yanked": False, "yanked_reason": None},
        ),
        (
            register(10, "Foo"),
            register(5, "FOO"),
            projects,
            {
                "registered_key": 10,
                "registered_name": "Foo",
                "seen_key": 10,
                "seen_name": "Foo",
                "live_key": 10,
            },
        ),
        (
            quarantine(10, False),
            quarantine(5, True),
            releases,
            {"quarantine_key": 10, "quarantined": False},
        ),
    ],
    ids=["yank", "unyank", "registration", "quarantine"],
)
def test_a_smaller_key_never_overwrites_a_larger_one(
    engine: Engine,
    larger: Changes,
    smaller: Changes,
    table: Table,
    expected: dict[str, Any],
    larger_first: bool,
) -> None:
    for changes in (larger, smaller) if larger_first else (smaller, larger):
        write(engine, changes)
    (row,) = snapshot(engine)[table.name]
    assert {column: row[column] for column in expected} == expected


def test_a_later_write_without_a_summary_keeps_the_summary(engine: Engine) -> None:
    with_summary = Changes()
    with_summary.project(FOO).summary = "A foo"
    write(engine, with_summary)
    write(engine, register(3, "Foo"))
    (row,) = snapshot(engine)["projects"]
    assert (row["summary"], row["registered_name"]) == ("A foo", "Foo")
