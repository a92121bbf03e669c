"""Write hits into the store: raw rows once each (by key), daily counts for the new ones only.

A batch is written in one transaction:

1. its user agents, each once (``stats_agents``, insert or ignore);
2. its hits, through a staging table, with ``INSERT ... ON CONFLICT DO NOTHING RETURNING``:
   what comes back is exactly the hits the store did not have;
3. the daily counts of those new hits, added to ``stats_daily``.

So the counts are a function of the *set* of hits written: any order, any batching, and any
repeat give the same counts, as long as the raw rows of a day are still kept (the log ingester
refuses lines older than that). :func:`prune` drops raw rows past the kept days.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Column, Connection, MetaData, Table, delete, select, true
from sqlalchemy.dialects import postgresql, sqlite

from wheelfarm.stats.agents import Agent
from wheelfarm.stats.hits import Hit
from wheelfarm.store.bulk import insert_rows
from wheelfarm.store.schema import stats_agents, stats_daily, stats_hits

__all__ = ["DIMENSIONS", "dimensions_of", "prune", "write_hits"]

#: The dimensions of ``stats_daily``; ``total`` has the value '' and ``bots`` counts bots.
DIMENSIONS = (
    "total",
    "version",
    "file",
    "target",
    "installer",
    "installer_version",
    "implementation",
    "python",
    "distro",
    "libc",
    "arch",
    "os",
    "ci",
    "bots",
)

_Group = tuple[int, str, str, str | None, str | None, str | None, Agent]

_STAGING = Table(
    "staging_stats_hits",
    MetaData(),
    *(Column(column.name, column.type) for column in stats_hits.c),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DELETE ROWS",
)


def dimensions_of(
    version: str | None, filename: str | None, target: str | None, agent: Agent
) -> list[tuple[str, str]]:
    """The (dimension, value) pairs one hit counts under."""
    if agent.bot:
        return [("bots", "")]
    installer = agent.installer or "unknown"
    pairs = [
        ("total", ""),
        ("version", version),
        ("file", filename),
        ("target", target),
        ("installer", installer),
        ("installer_version", f"{installer} {agent.installer_version or ''}".strip()),
        ("implementation", agent.implementation),
        ("python", agent.python),
        ("distro", agent.distro),
        ("libc", agent.libc),
        ("arch", agent.arch),
        ("os", agent.os),
        ("ci", None if agent.ci is None else ("yes" if agent.ci else "no")),
    ]
    return [(d, v[:512]) for d, v in pairs if v is not None]


def _insert_new(connection: Connection, rows: list[tuple[Any, ...]]) -> set[int]:
    """Insert the rows the store lacks; the keys of those inserted."""
    postgres = connection.dialect.name == "postgresql"
    dialect: Any = postgresql if postgres else sqlite
    _STAGING.create(connection, checkfirst=True)
    connection.execute(delete(_STAGING))
    names = [column.name for column in stats_hits.c]
    if postgres:
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(f"COPY {_STAGING.name} ({', '.join(names)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        finally:
            cursor.close()
    else:
        marks = ", ".join("?" for _ in names)
        connection.exec_driver_sql(f"INSERT INTO temp.{_STAGING.name} VALUES ({marks})", rows)
    statement = (
        dialect.insert(stats_hits)
        .from_select(names, select(*_STAGING.c).where(true()))
        .on_conflict_do_nothing()
        .returning(stats_hits.c.hit)
    )
    inserted = set(connection.execute(statement).scalars())
    connection.execute(delete(_STAGING))
    return inserted


def write_hits(
    connection: Connection, hits: Iterable[Hit], known_agents: set[int] | None = None
) -> int:
    """Write a batch of hits (see the module's docstring); returns how many were new."""
    batch: dict[int, Hit] = {}
    for hit in hits:
        batch.setdefault(hit.hit, hit)
    if not batch:
        return 0
    agents = {hit.agent.key: hit.agent for hit in batch.values()}
    fresh = [a.row() for k, a in agents.items() if known_agents is None or k not in known_agents]
    if fresh:
        names = [column.name for column in stats_agents.c]
        insert_rows(
            connection,
            stats_agents,
            [tuple(row[n] for n in names) for row in fresh],
            lambda statement: statement.on_conflict_do_nothing(),
        )
    rows = [
        (
            h.hit,
            h.day,
            h.at,
            h.kind,
            h.project,
            h.version,
            h.filename,
            h.target,
            h.client,
            h.agent.key,
        )
        for h in batch.values()
    ]
    inserted = _insert_new(connection, rows)
    if known_agents is not None:
        known_agents.update(agents)
    groups: Counter[_Group] = Counter(
        (h.day, h.kind, h.project, h.version, h.filename, h.target, h.agent)
        for key, h in batch.items()
        if key in inserted
    )
    _add_counts(connection, groups)
    return len(inserted)


def _add_counts(connection: Connection, groups: Counter[_Group]) -> None:
    counts: Counter[tuple[int, str, str, str, str]] = Counter()
    for (day, kind, project, version, filename, target, agent), number in groups.items():
        for dimension, value in dimensions_of(version, filename, target, agent):
            counts[(day, kind, project, dimension, value)] += number
    rows: Sequence[tuple[Any, ...]] = [(*key, number) for key, number in sorted(counts.items())]

    def add(statement: Any) -> Any:
        return statement.on_conflict_do_update(
            index_elements=["day", "kind", "project", "dimension", "value"],
            set_={"hits": stats_daily.c.hits + statement.excluded.hits},
        )

    insert_rows(connection, stats_daily, rows, add)


def prune(connection: Connection, keep_days: int, today: int) -> int:
    """Delete the raw hits of days before the kept ones; their daily counts stay."""
    result = connection.execute(delete(stats_hits).where(stats_hits.c.day < today - keep_days))
    return result.rowcount or 0
