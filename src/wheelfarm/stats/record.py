"""Write hits into the store: raw rows once each (by key), daily counts for the new ones only.

A batch is written in one transaction:

1. its user agents, each once (``stats_agents``, insert or ignore);
2. its hits, ``INSERT ... ON CONFLICT DO NOTHING``, finding out which ones the store did not
   have (:func:`_insert_new`);
3. the daily counts of those new hits, added to ``stats_daily``.

So the counts are a function of the *set* of hits written: any order, any batching, and any
repeat give the same counts, as long as the raw rows of a day are still kept (the log ingester
refuses lines older than that). :func:`prune` drops raw rows past the kept days.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Column, Connection, MetaData, Table, delete, select, true
from sqlalchemy.dialects import postgresql

from wheelfarm.stats.agents import Agent
from wheelfarm.stats.hits import HitRow
from wheelfarm.store.bulk import insert_rows
from wheelfarm.store.schema import stats_agents, stats_daily, stats_hits

__all__ = [
    "DIMENSIONS",
    "DailyCounter",
    "add_counted",
    "add_daily",
    "daily_counts",
    "daily_rows",
    "dimensions_of",
    "insert_hits",
    "prune",
    "write_hits",
]

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

_STAGING = Table(
    "staging_stats_hits",
    MetaData(),
    *(Column(column.name, column.type) for column in stats_hits.c),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DELETE ROWS",
)
_NAMES = [column.name for column in stats_hits.c]
_SQLITE_INSERT = (
    f"INSERT INTO {stats_hits.name} ({', '.join(_NAMES)}) "
    f"VALUES ({', '.join('?' for _ in _NAMES)}) ON CONFLICT DO NOTHING"
)


def dimensions_of(
    version: str | None, filename: str | None, target: str | None, agent: Agent
) -> list[tuple[str, str]]:
    """The (dimension, value) pairs one hit counts under (:func:`daily_counts` does the same
    for many hits at once)."""
    if agent.bot:
        return [("bots", "")]
    return [*_file_dimensions(version, filename, target), *_agent_dimensions(agent)]


def _file_dimensions(
    version: str | None, filename: str | None, target: str | None
) -> list[tuple[str, str]]:
    pairs = [("total", ""), ("version", version), ("file", filename), ("target", target)]
    return [(d, v[:512]) for d, v in pairs if v is not None]


def _agent_dimensions(agent: Agent) -> list[tuple[str, str]]:
    installer = agent.installer or "unknown"
    pairs = [
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


_Daily = tuple[int, str, str, str, str]  # day, kind, project, dimension, value
_Row = tuple[int, str, str, str, str, int]  # a stats_daily row: _Daily and its hits
_FILE_DIMENSIONS = (("version", 0), ("file", 1), ("target", 2))  # dimension, index in a file
_AGENT_DIMENSIONS = DIMENSIONS[4:-1]  # installer ... ci
_by_project = itemgetter(1, 3, 4)  # day, kind, project
_file_of = itemgetter(5, 6, 7)  # version, filename, target
_agent_of = itemgetter(9)


def daily_counts(hits: Sequence[HitRow], agents: Mapping[int, Agent]) -> dict[_Daily, int]:
    """How much each ``stats_daily`` row grows by ``hits``: :func:`dimensions_of` summed."""
    return {
        (day, kind, project, dimension, value): n
        for day, kind, project, dimension, value, n in daily_rows(hits, agents)
    }


def daily_rows(hits: Sequence[HitRow], agents: Mapping[int, Agent]) -> list[_Row]:
    """:func:`daily_counts` as ``stats_daily`` rows (day, kind, project, dimension, value, hits)."""
    counter = DailyCounter()
    counter.add(hits, agents)
    return counter.rows(agents)


class DailyCounter:
    """:func:`daily_rows` of a batch added part by part: each part's hits numbered as it comes,
    the batch's rows counted once at its end.

    Each hit is reduced to three small numbers: its (day, kind, project), its file (version,
    name, target) and its user agent, each numbered in C (``map`` over a dictionary). A
    dimension's value is a function of the file or of the agent, so each dimension is counted
    by numpy over (group, value) numbers, and only the rows counted are made in Python; a
    log's hits are many more. (Measured on the benchmark's 1,000,000 lines: 4.8 us a line
    with a ``Counter`` of (group, value) tuples per dimension, 1.2 with numpy.)

    Why in parts: the child writer (:mod:`.writer`) numbers each part as it inserts it, while
    the reader reads the next one, so the end of a batch, which the parts sent meanwhile wait
    for, is left with the counting, the upsert and the commit.
    """

    def __init__(self) -> None:
        self.hits = 0  # hits added, bots too
        self._count = 0  # hits numbered (bots are not)
        self._firsts: tuple[dict[Any, int], dict[Any, int], dict[Any, int]] = ({}, {}, {})
        self._seen: list[tuple[Any, Any, Any]] = []  # each part's hits: their first sights
        self._robots: Counter[tuple[int, str, str]] = Counter()

    def add(self, hits: Sequence[HitRow], agents: Mapping[int, Agent]) -> None:
        """Number ``hits`` (``agents`` has the agent of each)."""
        import numpy  # about 0.1 s to import: only when counting

        self.hits += len(hits)
        bots = {key for key, agent in agents.items() if agent.bot}
        people: Sequence[HitRow] = hits
        if bots:
            people = [hit for hit in hits if hit[9] not in bots]
            self._robots.update(_by_project(hit) for hit in hits if hit[9] in bots)
        if not people:
            return
        count, start = len(people), self._count
        groups, files, agent_keys = self._firsts
        # Each hit's number is where its value was first seen (``setdefault`` with a running
        # count); :meth:`rows` makes them dense.

        def first_sights(first: dict[Any, int], values: Iterable[Any]) -> Any:
            numbers = map(first.setdefault, values, itertools.count(start))
            return numpy.fromiter(numbers, numpy.int64, count)

        self._seen.append(
            (
                first_sights(groups, map(_by_project, people)),
                first_sights(files, map(_file_of, people)),
                first_sights(agent_keys, map(_agent_of, people)),
            )
        )
        self._count += count

    def rows(self, agents: Mapping[int, Agent]) -> list[_Row]:
        """The ``stats_daily`` rows of the hits added (``agents``: the agent of each)."""
        import numpy

        rows: list[_Row] = [
            (day, kind, project, "bots", "", n) for (day, kind, project), n in self._robots.items()
        ]
        if not self._count:
            return rows
        numbered = []
        for which, first in enumerate(self._firsts):
            dense = numpy.zeros(self._count, numpy.int64)
            dense[list(first.values())] = numpy.arange(len(first))
            numbered.append(dense[numpy.concatenate([seen[which] for seen in self._seen])])
        groups, file_numbers, agent_numbers = numbered
        group_of, files, keys = (list(first) for first in self._firsts)
        size = len(group_of)
        totals = numpy.bincount(groups, minlength=size)
        rows.extend(
            (*group_of[group], "total", "", n) for group, n in enumerate(totals.tolist()) if n
        )

        def add(dimension: str, numbers: Any, values: list[str | None]) -> None:
            """Count one dimension: ``values`` has the value of each numbered file or agent."""
            distinct = sorted({value for value in values if value is not None})
            if not distinct:
                return
            index = {value: n for n, value in enumerate(distinct)}
            none = len(distinct)
            value_numbers = numpy.array([none if v is None else index[v] for v in values])
            combined = groups * (none + 1) + value_numbers[numbers]
            if size * (none + 1) <= 4 * len(combined):
                found = numpy.bincount(combined, minlength=size * (none + 1))
                pairs = numpy.flatnonzero(found)
                numbers_of = found[pairs]
            else:
                pairs, numbers_of = numpy.unique(combined, return_counts=True)
            group_numbers, value_of = numpy.divmod(pairs, none + 1)
            rows.extend(
                (*group_of[group], dimension, distinct[value], n)
                for group, value, n in zip(
                    group_numbers.tolist(), value_of.tolist(), numbers_of.tolist(), strict=True
                )
                if value != none
            )

        for dimension, index in _FILE_DIMENSIONS:
            add(
                dimension,
                file_numbers,
                [None if f[index] is None else f[index][:512] for f in files],
            )
        spread = [dict(_agent_dimensions(agents[key])) for key in keys]
        for dimension in _AGENT_DIMENSIONS:
            add(dimension, agent_numbers, [pairs.get(dimension) for pairs in spread])
        return rows


def _insert_new(connection: Connection, hits: Sequence[HitRow]) -> Sequence[HitRow]:
    """Insert the hits the store lacks; those inserted."""
    if connection.dialect.name == "postgresql":
        return _insert_new_postgresql(connection, hits)
    return _insert_new_sqlite(connection, hits)


def _insert_new_sqlite(connection: Connection, hits: Sequence[HitRow]) -> Sequence[HitRow]:
    """One ``executemany`` straight into the table; its row count says how many were new.

    All new (a log read the first time) or none (read again) is the common case and costs
    nothing more. Otherwise the new rows are the last ``count`` row ids: SQLite gives an
    inserted row one more than the largest row id (https://sqlite.org/autoinc.html), and the
    transaction holds the write lock. This spares the copy of every hit into a staging table
    that ``INSERT ... SELECT ... RETURNING`` needs (PostgreSQL's way, below).
    """
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(_SQLITE_INSERT, hits)
        count = cursor.rowcount
        if count in (0, len(hits)):
            return hits if count else []
        cursor.execute(
            f"SELECT hit FROM {stats_hits.name} "
            f"WHERE rowid > (SELECT max(rowid) FROM {stats_hits.name}) - ?",
            (count,),
        )
        inserted = {row[0] for row in cursor.fetchall()}
    finally:
        cursor.close()
    return [hit for hit in hits if hit[0] in inserted]


def _insert_new_postgresql(connection: Connection, hits: Sequence[HitRow]) -> Sequence[HitRow]:
    """``COPY`` into a staging table, then ``INSERT ... SELECT ... RETURNING`` the new keys."""
    _STAGING.create(connection, checkfirst=True)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"DELETE FROM {_STAGING.name}")
        with cursor.copy(f"COPY {_STAGING.name} ({', '.join(_NAMES)}) FROM STDIN") as copy:
            for hit in hits:
                copy.write_row(hit)
    finally:
        cursor.close()
    statement = (
        postgresql.insert(stats_hits)
        .from_select(_NAMES, select(*_STAGING.c).where(true()))
        .on_conflict_do_nothing()
        .returning(stats_hits.c.hit)
    )
    inserted = set(connection.execute(statement).scalars())
    connection.execute(delete(_STAGING))
    return [hit for hit in hits if hit[0] in inserted]


def write_hits(
    connection: Connection,
    hits: Iterable[HitRow],
    agents: Mapping[int, Agent],
    known_agents: set[int] | None = None,
) -> int:
    """Write a batch of hits (see the module's docstring); returns how many were new.

    ``agents`` has the :class:`Agent` of each hit's ``agent`` key; ``known_agents``, when
    given, the keys already written (skipped, then added to).
    """
    inserted = insert_hits(connection, hits, agents, known_agents)
    add_daily(connection, inserted, agents)
    return len(inserted)


def insert_hits(
    connection: Connection,
    hits: Iterable[HitRow],
    agents: Mapping[int, Agent],
    known_agents: set[int] | None = None,
) -> Sequence[HitRow]:
    """Steps 1 and 2 of :func:`write_hits`: the agents and the raw hits; the hits that were new.

    A batch may be inserted in parts, each with this, and counted once at its end with
    :func:`add_daily` over the new hits of all its parts (the child writer does).
    """
    batch = list({hit[0]: hit for hit in hits}.values())
    if not batch:
        return []
    used = {hit[9] for hit in batch}
    fresh = [agents[k].row() for k in used if known_agents is None or k not in known_agents]
    if fresh:
        names = [column.name for column in stats_agents.c]
        insert_rows(
            connection,
            stats_agents,
            [tuple(row[n] for n in names) for row in fresh],
            lambda statement: statement.on_conflict_do_nothing(),
        )
    inserted = _insert_new(connection, batch)
    if known_agents is not None:
        known_agents.update(used)
    return inserted


def add_daily(connection: Connection, hits: Sequence[HitRow], agents: Mapping[int, Agent]) -> None:
    """Step 3 of :func:`write_hits`: add the daily counts of ``hits`` (new ones only)."""
    add_counted(connection, daily_rows(hits, agents))


def add_counted(connection: Connection, rows: Sequence[_Row]) -> None:
    """Add ``stats_daily`` rows (:class:`DailyCounter`'s) to those stored."""
    # Not sorted: sorting tuples of strings cost more than the inserts it spared (measured: 4.7
    # against 4.2 us per line).
    insert_rows(connection, stats_daily, rows, _add_to_stored)


def _add_to_stored(statement: Any) -> Any:
    """The upsert's ``ON CONFLICT``: one function, so its SQL is compiled once (:mod:`.bulk`)."""
    return statement.on_conflict_do_update(
        index_elements=["kind", "dimension", "day", "project", "value"],
        set_={"hits": stats_daily.c.hits + statement.excluded.hits},
    )


def prune(connection: Connection, keep_days: int, today: int) -> int:
    """Delete the raw hits of days before the kept ones; their daily counts stay."""
    result = connection.execute(delete(stats_hits).where(stats_hits.c.day < today - keep_days))
    return result.rowcount or 0
