"""Engines and migrations: SQLite (WAL) by default, PostgreSQL through a URL."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from wheelfarm.errors import ConfigError, WheelfarmError

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "StoreNotMigrated",
    "create_store_engine",
    "head_revision",
    "open_store",
    "stored_revision",
    "upgrade",
]

_MIGRATIONS = Path(__file__).parent / "migrations"


class StoreNotMigrated(WheelfarmError):
    """The database holds data at an older schema; upgrading it is the operator's decision."""

    def __init__(self, url: str, revision: str | None, head: str) -> None:
        super().__init__(
            f"database {url} is at schema revision {revision or 'none'}, wheelfarm needs {head}: "
            "run 'wheelfarm db upgrade'"
        )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers (the web layer) run beside the follower; NORMAL is safe under WAL."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB: the follower's upserts hit big indexes
    cursor.close()


def create_store_engine(url: str) -> Engine:
    """An engine for ``url``: ``postgresql://`` means psycopg 3; SQLite gets its folder made."""
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise ConfigError("database", url, "not a database URL") from error
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError("database", url, "only sqlite and postgresql databases are supported")
    return create_engine(parsed, pool_pre_ping=True)


# Alembic is imported where it is used: the processes that only read the store (the workers of
# a full regeneration, each started afresh) then skip a tenth of a second of imports.


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest schema revision this wheelfarm knows."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:
        raise WheelfarmError("no migrations found")  # a broken installation, not user input
    return head


def stored_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (``wheelfarm db upgrade``)."""
    from alembic import command

    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_store(url: str) -> Engine:
    """Open the store; an empty database is upgraded, an outdated one refused with advice."""
    engine = create_store_engine(url)
    revision = stored_revision(engine)
    head = head_revision()
    if revision == head:
        return engine
    if revision is None and not inspect(engine).get_table_names():
        upgrade(engine)
        return engine
    engine.dispose()
    raise StoreNotMigrated(url, revision, head)
