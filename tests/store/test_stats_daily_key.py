"""Migration 0016: daily counts keyed by (kind, dimension, day, project, value); the counts
already kept survive it both ways."""

from __future__ import annotations

from sqlalchemy import Engine, inspect, select, text

from tests.store.test_stats_hits_key import migrate
from wheelfarm.store.database import head_revision
from wheelfarm.store.schema import stats_daily

ROWS = [
    {
        "day": 20000,
        "kind": "download",
        "project": "demo",
        "dimension": "total",
        "value": "",
        "hits": 3,
    },
    {
        "day": 20001,
        "kind": "search",
        "project": "demo",
        "dimension": "python",
        "value": "3.11",
        "hits": 1,
    },
]
NEW_KEY = ["kind", "dimension", "day", "project", "value"]
OLD_KEY = ["day", "kind", "project", "dimension", "value"]


def _key(engine: Engine) -> list[str]:
    return list(inspect(engine).get_pk_constraint("stats_daily")["constrained_columns"])


def _indexes(engine: Engine) -> set[str | None]:
    return {index["name"] for index in inspect(engine).get_indexes("stats_daily")}


def _rows(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as connection:
        query = select(stats_daily).order_by(stats_daily.c.day)
        return [row._asdict() for row in connection.execute(query)]


def test_counts_kept_before_the_new_key_are_kept_after_it(engine: Engine) -> None:
    migrate(engine, "0014_cli17", down=True)
    assert _key(engine) == OLD_KEY
    with engine.begin() as connection:
        names = ", ".join(ROWS[0])
        marks = ", ".join(f":{name}" for name in ROWS[0])
        connection.execute(text(f"INSERT INTO stats_daily ({names}) VALUES ({marks})"), ROWS)
    migrate(engine, head_revision())
    assert _key(engine) == NEW_KEY
    assert _indexes(engine) == {"stats_daily_project_idx"}
    assert _rows(engine) == ROWS
    if engine.dialect.name == "sqlite":  # the table is its key
        with engine.connect() as connection:
            sql = "SELECT sql FROM sqlite_master WHERE name = 'stats_daily'"
            assert connection.execute(text(sql)).scalar_one().rstrip().endswith("WITHOUT ROWID")


def test_going_back_restores_the_old_key_and_the_kind_index(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(stats_daily.insert(), ROWS)
    migrate(engine, "0014_cli17", down=True)
    assert _key(engine) == OLD_KEY
    assert _indexes(engine) == {"stats_daily_kind_idx", "stats_daily_project_idx"}
    assert _rows(engine) == ROWS
    migrate(engine, head_revision())
