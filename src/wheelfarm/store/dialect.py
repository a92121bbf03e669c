"""Statements that differ by engine, written once.

The engine's own dialect module is looked up when a statement is made rather than imported
here: importing SQLAlchemy's PostgreSQL dialect costs about 0.1 s, which every short command on
SQLite (``wheelfarm targets list``) paid at start-up without ever using it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Dialect, Table

__all__ = ["insert_for", "upsert", "upsert_all"]


def insert_for(dialect: Dialect) -> Callable[[Table], Any]:
    """The ``insert()`` of ``dialect``'s engine (PostgreSQL or SQLite), with ON CONFLICT."""
    name = "postgresql" if dialect.name == "postgresql" else "sqlite"
    module = importlib.import_module(f"sqlalchemy.dialects.{name}")
    insert: Callable[[Table], Any] = module.insert
    return insert


def upsert(
    connection: Connection, table: Table, row: Mapping[str, Any], keys: Sequence[str]
) -> Any:
    """INSERT ``row``, or UPDATE the other columns of the row with the same ``keys``."""
    statement = insert_for(connection.dialect)(table).values(**row)
    return statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: statement.excluded[name] for name in row if name not in keys},
    )


def upsert_all(
    connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]], keys: Sequence[str]
) -> None:
    """:func:`upsert` many rows (all with the same columns) in one ``executemany``."""
    if not rows:
        return
    statement = insert_for(connection.dialect)(table)
    statement = statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: statement.excluded[name] for name in rows[0] if name not in keys},
    )
    connection.execute(statement, list(rows))
