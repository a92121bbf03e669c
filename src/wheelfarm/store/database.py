"""Engines and migrations: SQLite (WAL) by default, PostgreSQL through a URL."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from wheelfarm.errors import ConfigError, WheelfarmError, redact_url

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "StoreMissing",
    "StoreNotMigrated",
    "create_store_engine",
    "head_revision",
    "open_store",
    "quick_head_revision",
    "stored_revision",
    "upgrade",
]

_MIGRATIONS = Path(__file__).parent / "migrations"


class StoreNotMigrated(WheelfarmError):
    """The database holds data at an older schema; upgrading it is the operator's decision."""

    def __init__(self, url: str, revision: str | None, head: str) -> None:
        super().__init__(
            f"database {redact_url(url)} is at schema revision {revision or 'none'}, "
            f"wheelfarm needs {head}: run 'wheelfarm db upgrade'"
        )


class StoreMissing(WheelfarmError):
    """A command that only reads found no wheelfarm database where it looked (and made none)."""

    def __init__(self, url: str, where: str) -> None:
        super().__init__(f"no wheelfarm database at {where}")
        self.url = url
        self.where = where


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
            _private_file(Path(parsed.database))
        engine = create_engine(parsed)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError("database", url, "only sqlite and postgresql databases are supported")
    return create_engine(parsed, pool_pre_ping=True)


def _private_file(path: Path) -> None:
    """Make the database's folder (0700) and file (0600) before SQLite makes them world-readable.

    SQLite gives its ``-wal`` and ``-shm`` files the database file's permissions.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Held while the schema is checked and upgraded, so processes starting together on a new
    database do not see it half-created (one upgrades, the others wait, then find it current).

    SQLite: an advisory lock on a file beside the database. PostgreSQL: an advisory lock.
    """
    url = engine.url
    if url.get_backend_name() == "postgresql":
        key = zlib.crc32(b"wheelfarm migrations")
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()
        return
    if not url.database or url.database == ":memory:":
        yield
        return
    descriptor = os.open(f"{url.database}.migrate-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


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


_REVISION = re.compile(r'^revision = "([^"]+)"$', re.MULTILINE)
_DOWN_REVISION = re.compile(r'^down_revision = (?:"([^"]+)"|None)$', re.MULTILINE)


def quick_head_revision() -> str | None:
    """The newest revision as the migration files spell it, read as text; None when unsure.

    Alembic's own answer (:func:`head_revision`) imports Alembic and every migration: about a
    third of a short command's time. This reads the two assignments each migration starts
    with; anything unexpected (a branch, another spelling) answers None, and Alembic decides.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (_MIGRATIONS / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN_REVISION.search(source)
        if revision is None or down is None:
            return None
        revisions.add(revision[1])
        if down[1]:
            parents.add(down[1])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _quick_stored_revision(engine: Engine) -> str | None:
    """The database's revision by a plain query (None if it has no alembic_version table)."""
    try:
        with engine.connect() as connection:
            found = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        return None
    return str(found) if found is not None else None


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for other engines and in-memory databases)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None  # create_store_engine says what is wrong with it
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).absolute()


def open_store(url: str, *, create: bool = True) -> Engine:
    """Open the store; an empty database is upgraded, an outdated one refused with advice.

    With ``create=False`` (the commands that only read) a missing SQLite file or a database
    without wheelfarm's schema is :class:`StoreMissing`, and nothing is made.
    """
    if not create:
        path = _sqlite_file(url)
        if path is not None and not path.is_file():
            raise StoreMissing(url, str(path))
    engine = create_store_engine(url)
    quick = quick_head_revision()
    if quick is not None and _quick_stored_revision(engine) == quick:
        return engine  # at the newest schema: the common case, without importing Alembic
    head = head_revision()
    revision = stored_revision(engine)
    if revision == head:
        return engine
    if not create and revision is None and not inspect(engine).get_table_names():
        engine.dispose()
        raise StoreMissing(url, engine.url.render_as_string(hide_password=True))
    with _migration_lock(engine):
        revision = stored_revision(engine)  # again: another process may have upgraded it
        if revision == head:
            return engine
        if revision is None and not inspect(engine).get_table_names():
            upgrade(engine)
            return engine
    engine.dispose()
    raise StoreNotMigrated(url, revision, head)
