"""Statements that differ by engine, written once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["upsert", "upsert_all"]


def upsert(
    connection: Connection, table: Table, row: Mapping[str, Any], keys: Sequence[str]
) -> Any:
    """INSERT ``row``, or UPDATE the other columns of the row with the same ``keys``."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**row)
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
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: statement.excluded[name] for name in rows[0] if name not in keys},
    )
    connection.execute(statement, list(rows))
