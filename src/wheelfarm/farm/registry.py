"""Targets and builders as the operator configures them (``wheelfarm targets``, ``builders``).

Builder tokens are 256-bit random strings shown once at creation; only their SHA-256 is stored.
A slow password hash buys nothing for a secret that long, and lookups stay one indexed query.
The builder API does not look a token up per request: it keeps the whole table of hashes in
memory and reads it again every few seconds (:mod:`wheelfarm.farm.tokens`), with
:func:`builder_tokens` and :func:`builder_with_token`; requests note ``last_seen`` for
:func:`note_seen` to write in batches (:mod:`wheelfarm.farm.presence`).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from wheelfarm.errors import WheelfarmError
from wheelfarm.store.marks import mark_all_changed
from wheelfarm.store.schema import builders, targets
from wheelfarm.targets import Target

__all__ = [
    "BuilderInfo",
    "DuplicateName",
    "add_builder",
    "add_target",
    "authenticate",
    "builder_tokens",
    "builder_with_token",
    "command_of",
    "list_builders",
    "list_targets",
    "note_seen",
    "remove_builder",
    "remove_target",
    "set_command",
    "token_hash",
]


class DuplicateName(WheelfarmError):
    """A target or builder of that name exists already."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"a {kind} named {name!r} exists already")
        self.kind = kind
        self.name = name


@dataclass(frozen=True)
class BuilderInfo:
    name: str
    created_at: float
    label: str | None
    target: str | None
    python: str | None
    os: str | None
    last_seen: float | None
    command: str | None


def add_target(connection: Connection, target: Target, distro: str | None = None) -> None:
    try:
        with connection.begin_nested():
            connection.execute(
                insert(targets).values(
                    name=target.name, platforms=" ".join(target.platforms), distro=distro
                )
            )
    except IntegrityError as error:
        raise DuplicateName("target", target.name) from error
    mark_all_changed(connection)  # every project page gains a column


def list_targets(connection: Connection) -> list[Target]:
    rows = connection.execute(select(targets).order_by(targets.c.name))
    return [Target.parse(row.name, tuple(row.platforms.split())) for row in rows]


def remove_target(connection: Connection, name: str) -> bool:
    removed = connection.execute(delete(targets).where(targets.c.name == name)).rowcount > 0
    if removed:
        mark_all_changed(connection)  # every project page loses a column
    return removed


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_builder(connection: Connection, name: str, *, now: float) -> str:
    """Register a builder; returns its token (shown once, stored hashed)."""
    token = secrets.token_urlsafe(32)
    try:
        with connection.begin_nested():
            connection.execute(
                insert(builders).values(name=name, token_hash=token_hash(token), created_at=now)
            )
    except IntegrityError as error:
        raise DuplicateName("builder", name) from error
    return token


def list_builders(connection: Connection) -> list[BuilderInfo]:
    rows = connection.execute(select(builders).order_by(builders.c.name)).mappings()
    return [BuilderInfo(**{k: row[k] for k in BuilderInfo.__dataclass_fields__}) for row in rows]


def remove_builder(connection: Connection, name: str) -> bool:
    """Revoke a builder: its token stops working at once here, and within
    :data:`~wheelfarm.farm.tokens.REFRESH_SECONDS` (2 s) on a running master's builder API."""
    return connection.execute(delete(builders).where(builders.c.name == name)).rowcount > 0


def authenticate(connection: Connection, token: str, *, now: float) -> str | None:
    """The name of the builder holding ``token`` (None: unknown or revoked); notes it was seen."""
    digest = token_hash(token)
    name = connection.execute(
        select(builders.c.name).where(builders.c.token_hash == digest)
    ).scalar()
    if name is not None:
        connection.execute(update(builders).where(builders.c.name == name).values(last_seen=now))
    return name


def builder_tokens(connection: Connection) -> dict[str, str]:
    """Every builder's name by its token's hash: the whole table, for a cache."""
    rows = connection.execute(select(builders.c.token_hash, builders.c.name))
    return {row.token_hash: row.name for row in rows}


def builder_with_token(connection: Connection, digest: str) -> str | None:
    """The name of the builder whose token hashes to ``digest`` (None: unknown or revoked)."""
    return connection.execute(
        select(builders.c.name).where(builders.c.token_hash == digest)
    ).scalar()


def note_seen(connection: Connection, seen: Mapping[str, float]) -> None:
    """Set the builders' ``last_seen`` times, all in one statement."""
    if not seen:
        return
    statement = (
        update(builders)
        .where(builders.c.name == bindparam("b_name"))
        .values(last_seen=bindparam("b_seen"))
    )
    rows = [{"b_name": name, "b_seen": seen[name]} for name in sorted(seen)]  # in key order
    connection.execute(statement, rows)


def set_command(connection: Connection, name: str, command: str | None) -> bool:
    """Tell a builder ``skip``, ``pause`` or ``stop`` (``None`` clears it); False: no such builder.

    The builder hears it at its next heartbeat (during a build) or claim (between builds).
    """
    result = connection.execute(
        update(builders).where(builders.c.name == name).values(command=command)
    )
    return result.rowcount > 0


def command_of(connection: Connection, name: str) -> str | None:
    """The command waiting for a builder, if any."""
    return connection.execute(select(builders.c.command).where(builders.c.name == name)).scalar()
