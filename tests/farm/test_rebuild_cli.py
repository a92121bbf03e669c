"""``wheelfarm rebuild`` refuses what it cannot do, with status 2 and the reason; both engines."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.farm.test_queue import CP311, History
from tests.farm.test_targets_backlog import queue, wheelfarm
from wheelfarm.farm.registry import add_target


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("rebuild", "nope"), "no project named 'nope'"),  # a typo in the name
        (("rebuild", "demo", "9.9"), "release demo 9.9 does not exist"),  # a typo in the version
        (
            ("rebuild", "demo", "--target", "cp39-cp39-linux_armv7l"),
            "target 'cp39-cp39-linux_armv7l' does not exist",
        ),
        (("rebuild",), "give a project NAME, or --all with --target"),  # nothing named
        (("rebuild", "demo", "--all", "--target", CP311.name), "not both"),
        (("rebuild", "--all"), "--all needs --target"),
        (("rebuild", "demo", "--built-before", "2026-01-01"), "--built-before goes with --all"),
        (("rebuild", "--all", "--target", CP311.name, "--built-before", "last week"), "last week"),
        (("rebuild", "--all", "--target", "cp39-cp39-linux_armv7l"), "does not exist"),
    ],
)
def test_a_rebuild_that_cannot_be_done_exits_2_naming_what_was_wrong(
    engine: Engine, database_url: str, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    History(engine)("demo", "1.0", "add source file demo-1.0.tar.gz")
    with engine.begin() as connection:
        add_target(connection, CP311)
    before = queue(engine)
    result = wheelfarm(tmp_path, database_url, *args)
    assert result.returncode == 2, result.stdout
    assert message in result.stderr
    assert queue(engine) == before
