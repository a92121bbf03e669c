"""A heartbeat on the master: answered from memory, else one read; notes for the batched writer.

A heartbeat checks that the build is the builder's and under way, renews its job's lease and
keeps its readings. Most are answered from the :class:`~wheelfarm.farm.lease_book.LeaseBook`, on
the event loop with no database at all (:func:`heartbeat_from_book`); the rest (the book is stale
or lacks the build) read the build, its job's lease and the builder's command in one query
(:func:`heartbeat`). Either way the renewal and the readings are noted for
:class:`~wheelfarm.farm.presence.Presence` to write within a second, so a heartbeat takes no
write lock. The exception: a lease with less than half its length left (a builder back after a
long silence, or a store that could not be written for minutes) is renewed by the request
itself, in its own transaction, before the builder is told to go on; so a builder told
``continue`` holds its job for at least half a lease, whatever happens to the master's memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Select, bindparam, select

from wheelfarm.farm.builds import renew_lease
from wheelfarm.farm.lease_book import LeaseBook, OpenLease, command_told
from wheelfarm.farm.presence import Presence, Renewal
from wheelfarm.farm.refusals import BuildOver, NotYourBuild
from wheelfarm.protocol import Command, Health
from wheelfarm.store.schema import builders, builds, jobs

__all__ = ["BuildLease", "build_lease", "heartbeat", "heartbeat_from_book"]


@dataclass(frozen=True)
class BuildLease:
    """A build under way, checked to be the builder's, with its lease and the builder's command."""

    project: str
    version: str
    target: str
    expires: float | None  # None: its job is no longer the builder's
    command: Command


def _lease_query() -> Select[Any]:
    """The build, its job's lease and its builder's command, by ``build_id``."""
    b, j = builds, jobs
    job = (
        (j.c.project == b.c.project)
        & (j.c.version == b.c.version)
        & (j.c.target == b.c.target)
        & (j.c.builder == b.c.builder)
    )
    return (
        select(
            b.c.builder,
            b.c.status,
            b.c.project,
            b.c.version,
            b.c.target,
            j.c.lease_expires,
            builders.c.command,
        )
        .select_from(b.outerjoin(j, job).outerjoin(builders, builders.c.name == b.c.builder))
        .where(b.c.id == bindparam("build_id"))
    )


# Built once: building the expression took more CPU than running it (cProfile, 1,000 beats).
_LEASE = _lease_query()


def build_lease(connection: Connection, build_id: int, builder: str) -> BuildLease:
    """The build's job and lease, in one query.

    Raises :class:`NotYourBuild` (none such, or another's) or :class:`BuildOver`, as
    :func:`~wheelfarm.farm.builds.own_build` does.
    """
    row = connection.execute(_LEASE, {"build_id": build_id}).first()
    if row is None or row.builder != builder:
        raise NotYourBuild(build_id)
    if row.status != "building":
        raise BuildOver(build_id)
    command = command_told(row.command)
    return BuildLease(row.project, row.version, row.target, row.lease_expires, command)


def heartbeat_from_book(
    book: LeaseBook,
    presence: Presence,
    build_id: int,
    builder: str,
    health: Health,
    now: float,
    lease_seconds: float,
) -> Command | None:
    """The heartbeat answered from memory: the operator's command, or None to ask the store.

    None when the book is stale, lacks the build, or holds a lease with less than half its
    length left (renewed by :func:`heartbeat` in the store). Raises :class:`NotYourBuild` for
    another builder's build.
    """
    lease = book.lookup(build_id)
    if lease is None or lease.expires - now < lease_seconds / 2:
        return None
    if lease.builder != builder:
        raise NotYourBuild(build_id)
    presence.readings(builder, health, now)
    renewal = Renewal(lease.project, lease.version, lease.target, builder, now + lease_seconds)
    presence.renewed(build_id, renewal)
    return lease.command


def heartbeat(
    engine: Engine,
    presence: Presence,
    book: LeaseBook,
    build_id: int,
    builder: str,
    health: Health,
    now: float,
    lease_seconds: float,
) -> Command:
    """Renew the build's lease and keep the readings, reading the store; returns the command."""
    with engine.connect() as connection:
        lease = build_lease(connection, build_id, builder)
    presence.readings(builder, health, now)
    if lease.expires is None or lease.expires - now < lease_seconds / 2:
        with engine.begin() as connection:
            command = renew_lease(
                connection, build_id, builder, now=now, lease_seconds=lease_seconds
            )
        presence.forget_renewal(build_id)
        if lease.expires is not None:  # renewed: the book may answer the next ones
            expires = now + lease_seconds
            book.opened(
                build_id,
                OpenLease(builder, lease.project, lease.version, lease.target, expires, command),
            )
        return command
    renewal = Renewal(lease.project, lease.version, lease.target, builder, now + lease_seconds)
    presence.renewed(build_id, renewal)
    return lease.command
