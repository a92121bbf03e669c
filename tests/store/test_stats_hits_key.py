"""Migration 0008: raw hits keyed by (day, hit); the hits already kept survive it both ways."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine, inspect, select, text

from wheelfarm.store.database import _alembic_config, head_revision
from wheelfarm.store.schema import stats_hits

HIT = {
    "hit": -5,
    "day": 20000,
    "at": 1_728_000_000.0,
    "kind": "download",
    "project": "demo",
    "version": "1.0",
    "filename": "demo-1.0-py3-none-any.whl",
    "target": "py3-none-any",
    "client": "0123456789abcdef",
    "agent": 7,
}


def migrate(engine: Engine, revision: str, *, down: bool = False) -> None:
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def test_hits_kept_before_the_new_key_are_kept_after_it(engine: Engine) -> None:
    migrate(engine, "0006", down=True)
    with engine.begin() as connection:
        names = ", ".join(HIT)
        marks = ", ".join(f":{name}" for name in HIT)
        connection.execute(text(f"INSERT INTO stats_hits ({names}) VALUES ({marks})"), HIT)
    migrate(engine, head_revision())
    assert inspect(engine).get_pk_constraint("stats_hits")["constrained_columns"] == [
        "day",
        "hit",
    ]
    with engine.connect() as connection:
        assert [row._asdict() for row in connection.execute(select(stats_hits))] == [HIT]


def test_going_back_restores_the_old_key_and_the_day_index(engine: Engine) -> None:
    migrate(engine, "0006", down=True)
    assert inspect(engine).get_pk_constraint("stats_hits")["constrained_columns"] == ["hit"]
    assert "stats_hits_day_idx" in {i["name"] for i in inspect(engine).get_indexes("stats_hits")}
    migrate(engine, head_revision())
