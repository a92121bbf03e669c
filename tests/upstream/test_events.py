"""Changelog rows: every action the upstream emits, every way a row can be broken, the order key."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wheelfarm.store.events import MAX_SERIAL, MAX_TIMESTAMP, Action, EventProblem, Phase, order_key
from wheelfarm.upstream.events import parse_row

TIMESTAMP = 1_600_000_000


@pytest.mark.parametrize(
    ("version", "action", "expected"),
    [
        (None, "create", (Action.CREATE, None, None)),
        ("1.0", "new release", (Action.NEW_RELEASE, None, None)),
        (
            "1.0",
            "add source file x-1.0.tar.gz",
            (Action.ADD_FILE, "x-1.0.tar.gz", "source"),
        ),
        (
            "1.0",
            "add py3 file x-1.0-py3-none-any.whl",
            (Action.ADD_FILE, "x-1.0-py3-none-any.whl", "py3"),
        ),
        (
            "1.0",
            "add cp311 file x-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
            (Action.ADD_FILE, "x-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", "cp311"),
        ),
        ("1.0", "remove file x-1.0.tar.gz", (Action.REMOVE_FILE, "x-1.0.tar.gz", None)),
        ("1.0", "remove release", (Action.REMOVE_RELEASE, None, None)),
        (None, "remove project", (Action.REMOVE_PROJECT, None, None)),
        ("1.0", "remove", (Action.REMOVE_RELEASE, None, None)),  # legacy, with a version
        (None, "remove", (Action.REMOVE_PROJECT, None, None)),  # legacy, without one
        ("1.0", "yank release", (Action.YANK, None, None)),
        ("1.0", "unyank release", (Action.UNYANK, None, None)),
        (None, "project quarantined", (Action.QUARANTINE_PROJECT, None, None)),
        (None, "project quarantine cleared", (Action.CLEAR_PROJECT_QUARANTINE, None, None)),
        ("1.0", "release quarantined", (Action.QUARANTINE_RELEASE, None, None)),
        ("1.0", "release quarantine cleared", (Action.CLEAR_RELEASE_QUARANTINE, None, None)),
        # Role and metadata changes: journalled, never a deletion.
        (None, "add Owner alice", (Action.METADATA, None, None)),
        (None, "remove Owner alice", (Action.METADATA, None, None)),
        (None, "remove Maintainer bob", (Action.METADATA, None, None)),
        (None, "change Owner alice to Maintainer", (Action.METADATA, None, None)),
        ("1.0", "update description", (Action.METADATA, None, None)),
        (None, "docupdate", (Action.METADATA, None, None)),
    ],
)
def test_parse_row_classifies_every_upstream_action(
    version: str | None, action: str, expected: tuple[Action, str | None, str | None]
) -> None:
    event = parse_row(["Foo.Bar", version, TIMESTAMP, action, 42])
    assert (event.kind, event.filename, event.python_version) == expected
    assert (event.serial, event.timestamp, event.name, event.version, event.action) == (
        42,
        TIMESTAMP,
        "Foo.Bar",
        version,
        action,
    )
    assert event.project == "foo-bar"


@pytest.mark.parametrize(
    "action",
    ["add Owner alice", "remove Owner alice", "remove Maintainer bob", "remove Owner file"],
)
def test_role_changes_are_never_deletions(action: str) -> None:
    assert parse_row(["foo", None, TIMESTAMP, action, 1]).kind is Action.METADATA


def test_parse_row_accepts_a_tuple_and_strips_name_and_version() -> None:
    event = parse_row((" Foo ", " 1.0 ", TIMESTAMP, "new release", 7))
    assert (event.name, event.version, event.kind) == ("Foo", "1.0", Action.NEW_RELEASE)


@pytest.mark.parametrize(
    ("row", "problems", "serial"),
    [
        # wrong length: nothing else can be read
        (["foo", None, TIMESTAMP, "create"], ["expected 5 fields"], None),
        # not a sequence at all
        ("foo", ["expected 5 fields"], None),
        # serial is a string
        (["foo", None, TIMESTAMP, "create", "7"], ["serial '7'"], None),
        # serial is a bool (an int subclass)
        (["foo", None, TIMESTAMP, "create", True], ["serial True"], None),
        # serial above what the order key can hold
        (["foo", None, TIMESTAMP, "create", MAX_SERIAL + 1], [f"serial {MAX_SERIAL + 1}"], None),
        # serial zero: upstream serials start at one
        (["foo", None, TIMESTAMP, "create", 0], ["serial 0"], None),
        # negative timestamp, valid serial: the serial is kept for the journal
        (["foo", None, -1, "create", 7], ["timestamp -1"], 7),
        # timestamp past 2106
        (["foo", None, MAX_TIMESTAMP + 1, "create", 7], [f"timestamp {MAX_TIMESTAMP + 1}"], 7),
        # empty name
        (["", None, TIMESTAMP, "create", 7], ["name ''"], 7),
        # blank name
        (["  ", None, TIMESTAMP, "create", 7], ["name '  '"], 7),
        # version neither None nor a string
        (["foo", 1.0, TIMESTAMP, "new release", 7], ["version 1.0"], 7),
        # action not a string
        (["foo", None, TIMESTAMP, None, 7], ["action None"], 7),
        # a release action without its version
        (["foo", None, TIMESTAMP, "new release", 7], ["'new release' needs a version"], 7),
        (["foo", None, TIMESTAMP, "add py3 file foo.whl", 7], ["needs a version"], 7),
        (["foo", None, TIMESTAMP, "yank release", 7], ["needs a version"], 7),
        # everything wrong at once: every problem is listed
        (
            ["", 3, -5, 4, "x"],
            ["serial 'x'", "timestamp -5", "name ''", "version 3", "action 4"],
            None,
        ),
        (
            [None, None, "then", "create", MAX_SERIAL],
            ["timestamp 'then'", "name None"],
            MAX_SERIAL,
        ),
    ],
)
def test_parse_row_lists_every_problem(row: Any, problems: list[str], serial: int | None) -> None:
    with pytest.raises(EventProblem) as caught:
        parse_row(row)
    problem = caught.value
    assert len(problem.problems) == len(problems)
    for found, expected in zip(problem.problems, problems, strict=True):
        assert expected in found
    assert problem.serial == serial
    assert problem.row is row
    assert repr(row) in str(problem)


def test_parse_row_reports_a_missing_version_along_with_other_problems() -> None:
    with pytest.raises(EventProblem) as caught:
        parse_row(["foo", None, -1, "new release", 7])
    assert len(caught.value.problems) == 2


@pytest.mark.parametrize(
    ("timestamp", "serial"),
    [(0, 1), (TIMESTAMP, 42), (MAX_TIMESTAMP, MAX_SERIAL)],
)
def test_event_key_is_the_order_key_of_its_timestamp_and_serial(
    timestamp: int, serial: int
) -> None:
    event = parse_row(["foo", "1.0", timestamp, "new release", serial])
    assert event.key == order_key(timestamp, serial) == order_key(timestamp, serial, Phase.EVENT)


moments = st.tuples(
    st.integers(0, MAX_TIMESTAMP), st.integers(0, MAX_SERIAL), st.sampled_from(Phase)
)


@given(moments, moments)
def test_order_key_sorts_like_timestamp_serial_phase(
    a: tuple[int, int, Phase], b: tuple[int, int, Phase]
) -> None:
    assert (order_key(*a) < order_key(*b)) == (a < b)
    assert (order_key(*a) == order_key(*b)) == (a == b)


@given(moments)
def test_order_key_fits_a_signed_64_bit_column(moment: tuple[int, int, Phase]) -> None:
    assert 0 <= order_key(*moment) < 2**63


def test_a_page_read_wins_the_tie_with_the_event_at_its_serial() -> None:
    assert order_key(TIMESTAMP, 5, Phase.STATE) > order_key(TIMESTAMP, 5, Phase.EVENT)
    assert order_key(TIMESTAMP, 5, Phase.STATE) < order_key(TIMESTAMP, 6, Phase.EVENT)


@pytest.mark.parametrize(
    ("timestamp", "serial", "message"),
    [
        (-1, 1, "timestamp -1"),  # before the epoch
        (MAX_TIMESTAMP + 1, 1, "timestamp"),  # past 2106: would spill into the sign bit
        (TIMESTAMP, -1, "serial -1"),  # negative serial
        (TIMESTAMP, MAX_SERIAL + 1, "serial"),  # would overlap the timestamp's bits
    ],
)
def test_order_key_out_of_range_raises_value_error(
    timestamp: int, serial: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        order_key(timestamp, serial)


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (["x" * 256, None, 1, "create", 1], "name is longer than 255 characters"),
        (["foo", "1" * 256, 1, "new release", 1], "version is longer than 255 characters"),
        (["fo\x00o", None, 1, "create", 1], "name contains a NUL character"),
        (["foo", "1.0", 1, "add source file " + "f" * 600, 1], "action is longer than"),
    ],
)
def test_rows_the_store_cannot_hold_are_refused(row: list[object], problem: str) -> None:
    with pytest.raises(EventProblem) as caught:
        parse_row(row)
    assert any(problem in text for text in caught.value.problems)
