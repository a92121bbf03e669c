"""Insert many rows at once, the fastest way each engine offers.

The follower writes batches of tens of thousands of rows. Through SQLAlchemy's per-row
parameter handling that cost more than the databases' own work, so rows travel as plain tuples
in the table's column order:

- SQLite: one compiled statement, the tuples handed to the driver's ``executemany``.
- PostgreSQL: ``COPY`` into a temporary staging table, then one ``INSERT ... SELECT`` with the
  same ``ON CONFLICT`` clause (measured on 300,000 events: 13,000 events/s with
  ``executemany``; see benchmarks/follow_changelog.py for the figure with ``COPY``).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Column, Connection, Dialect, MetaData, Table, select

from wheelfarm.store.dialect import insert_for

__all__ = ["COPY_THRESHOLD", "OnConflict", "insert_rows"]

# Below this many rows a staging table costs more than it saves (PostgreSQL).
COPY_THRESHOLD = 1_000

OnConflict = Callable[[Any], Any]  # adds the ON CONFLICT clause to an engine's INSERT


def insert_rows(
    connection: Connection,
    table: Table,
    rows: Sequence[tuple[Any, ...]],
    on_conflict: OnConflict,
) -> None:
    """INSERT ``rows`` (tuples in ``table``'s column order) with ``on_conflict`` applied."""
    if not rows:
        return
    if connection.dialect.name == "postgresql" and len(rows) >= COPY_THRESHOLD:
        _copy_then_insert(connection, table, rows, on_conflict)
    else:
        _execute_many(connection, table, rows, on_conflict)


@functools.lru_cache(maxsize=128)
def _compiled(
    dialect: Dialect, table: Table, on_conflict: OnConflict
) -> tuple[str, tuple[str, ...] | None]:
    """The statement's SQL and its positional parameter names, compiled once per caller.

    Reconcile writes one project at a time, and compiling the upserts' ``CASE`` rules cost
    more than the writes (about 4 ms of a project's 7 ms, measured with benchmarks/
    reconcile_pool.py); callers that pass the same ``on_conflict`` function reuse the SQL.
    """
    insert = insert_for(dialect)(table)
    compiled = on_conflict(insert).compile(dialect=dialect)
    positions = None if compiled.positiontup is None else tuple(compiled.positiontup)
    return str(compiled), positions


def _execute_many(
    connection: Connection,
    table: Table,
    rows: Sequence[tuple[Any, ...]],
    on_conflict: OnConflict,
) -> None:
    sql, positions = _compiled(connection.dialect, table, on_conflict)
    columns = [column.name for column in table.c]
    if positions is None:
        parameters: Sequence[Any] = [dict(zip(columns, row, strict=True)) for row in rows]
    else:
        indexes = [columns.index(name) for name in positions]
        if indexes == list(range(len(columns))):
            parameters = rows
        else:
            pick = operator.itemgetter(*indexes)
            parameters = [pick(row) for row in rows]
    connection.exec_driver_sql(sql, parameters)


def _staging(table: Table) -> Table:
    """A temporary table shaped like ``table``, private to the session, emptied at commit."""
    return Table(
        f"staging_{table.name}",
        MetaData(),
        *(Column(column.name, column.type) for column in table.c),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DELETE ROWS",
    )


def _copy_then_insert(
    connection: Connection, table: Table, rows: Sequence[tuple[Any, ...]], on_conflict: OnConflict
) -> None:
    staging = _staging(table)
    staging.create(connection, checkfirst=True)
    columns = [column.name for column in table.c]
    names = ", ".join(f'"{name}"' for name in columns)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f'DELETE FROM "{staging.name}"')  # left over only within one transaction
        with cursor.copy(f'COPY "{staging.name}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)
    finally:
        cursor.close()
    statement = insert_for(connection.dialect)(table).from_select(columns, select(*staging.c))
    connection.execute(on_conflict(statement))
