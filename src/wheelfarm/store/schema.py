"""The one schema both engines share (Alembic migrations in ``migrations/`` create it).

Facts are never deleted. Each fact keeps the order key of the latest event that asserted it
(``live_key``) and that retracted it (``removed_key``); whether it exists now is derived by
comparing keys with its parents' removals (see :mod:`wheelfarm.store.views`). Max is
commutative and idempotent, so the state does not depend on the order events arrive in.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKeyConstraint,
    Index,
    MetaData,
    String,
    Table,
    Text,
    false,
)

__all__ = ["events", "files", "metadata", "projects", "releases", "state"]

metadata = MetaData()


def _key(name: str) -> Column[int]:
    return Column(name, BigInteger, nullable=False, server_default="0")


def _flag(name: str) -> Column[bool]:
    return Column(name, Boolean, nullable=False, server_default=false())


state = Table(
    "state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("serial", BigInteger, primary_key=True, autoincrement=False),
    Column("timestamp", BigInteger),
    Column("name", Text),
    Column("version", Text),
    Column("action", Text),
    Column("problem", Text),
)

projects = Table(
    "projects",
    metadata,
    Column("name", String(255), primary_key=True),
    _key("live_key"),
    _key("removed_key"),
    _key("registered_key"),
    Column("registered_name", Text),
    _key("seen_key"),
    Column("seen_name", Text),
    _key("quarantine_key"),
    _flag("quarantined"),
    Column("summary", Text),
    _key("last_serial"),
    _key("synced_serial"),
    _key("touched_key"),
)

releases = Table(
    "releases",
    metadata,
    Column("project", String(255), primary_key=True),
    Column("version", String(255), primary_key=True),
    _key("live_key"),
    _key("removed_key"),
    _key("yank_key"),
    _flag("yanked"),
    Column("yanked_reason", Text),
    _key("quarantine_key"),
    _flag("quarantined"),
    _flag("prerelease"),
    ForeignKeyConstraint(["project"], ["projects.name"], name="releases_project_fkey"),
)

files = Table(
    "files",
    metadata,
    Column("project", String(255), primary_key=True),
    Column("filename", String(512), primary_key=True),
    Column("version", String(255), nullable=False),
    _key("live_key"),
    _key("removed_key"),
    Column("python_version", String(64)),
    Column("sha256", String(64)),
    Column("size", BigInteger),
    Column("upload_time", String(40)),
    Column("requires_python", Text),
    ForeignKeyConstraint(
        ["project", "version"],
        ["releases.project", "releases.version"],
        name="files_release_fkey",
    ),
    Index("files_release_idx", "project", "version"),
)
