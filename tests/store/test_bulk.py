"""Large batches (PostgreSQL's COPY path) write exactly what small batches write."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, select

from tests.fixtures.changelog_gen import synthetic_changelog
from wheelfarm.store.bulk import COPY_THRESHOLD
from wheelfarm.store.database import open_store
from wheelfarm.store.events import ChangelogEvent
from wheelfarm.store.schema import events, files, projects, releases
from wheelfarm.upstream.changelog import ChangelogBatch
from wheelfarm.upstream.events import parse_row
from wheelfarm.upstream.follow import Follower


def _dump(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as connection:
        return {
            table.name: sorted(tuple(row) for row in connection.execute(select(table)))
            for table in (projects, releases, files, events)
        }


def _apply(engine: Engine, parsed: list[ChangelogEvent], size: int) -> None:
    follower = Follower(engine, pages=None)  # type: ignore[arg-type]  # no page reads here
    for start in range(0, len(parsed), size):
        chunk = parsed[start : start + size]
        follower.apply_batch(ChangelogBatch(events=chunk, last_serial=chunk[-1].serial))


def test_one_large_batch_equals_many_small_ones(engine: Engine, tmp_path: Path) -> None:
    script = synthetic_changelog(3 * COPY_THRESHOLD, seed=3)
    parsed = [parse_row([e.name, e.version, e.timestamp, e.action, e.serial]) for e in script]
    _apply(engine, parsed, size=len(parsed))  # one batch: every table gets > COPY_THRESHOLD rows
    _apply(engine, parsed, size=len(parsed))  # and again: idempotent through the same path
    large = _dump(engine)
    assert len(large["events"]) == len(parsed)
    assert len(large["files"]) > COPY_THRESHOLD

    small = open_store(f"sqlite:///{tmp_path / 'small-batches.sqlite'}")
    _apply(small, parsed, size=100)
    assert _dump(small) == large
    small.dispose()
