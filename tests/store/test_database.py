"""Opening the store: empty databases are migrated, outdated ones refused with advice."""

from __future__ import annotations

import stat
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import Engine, inspect, text

from wheelfarm.errors import ConfigError
from wheelfarm.store.database import (
    StoreNotMigrated,
    create_store_engine,
    head_revision,
    open_store,
    quick_head_revision,
    stored_revision,
)


def test_open_store_migrates_an_empty_database(engine: Engine) -> None:
    assert stored_revision(engine) == head_revision()
    assert {"events", "projects", "releases", "files", "state"} <= set(
        inspect(engine).get_table_names()
    )


def test_open_store_refuses_a_database_at_another_revision(database_url: str) -> None:
    engine = open_store(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    engine.dispose()
    with pytest.raises(StoreNotMigrated, match="wheelfarm db upgrade"):
        open_store(database_url)


def test_sqlite_store_uses_wal(tmp_path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'deep' / 'store.sqlite'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


@pytest.mark.parametrize(
    "url",
    [
        "not a url",  # no scheme at all
        "mysql://localhost/wheelfarm",  # an engine we do not support
    ],
)
def test_bad_database_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="database"):
        create_store_engine(url)


def test_migrations_create_exactly_the_schema_the_code_declares(engine: Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from wheelfarm.store.schema import metadata

    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


_OPEN_STORE = (
    "import sys; from wheelfarm.store.database import open_store; open_store(sys.argv[1]).dispose()"
)


def _open_together(url: str, processes: int) -> list[subprocess.CompletedProcess[str]]:
    """Start ``processes`` interpreters that open the same new store at once."""
    started = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_STORE, url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    finished = []
    for process in started:
        out, err = process.communicate(timeout=120)
        finished.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return finished


@pytest.mark.parametrize("round_", range(3))
def test_processes_opening_a_new_sqlite_store_together_all_succeed(tmp_path, round_) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'wheelfarm.sqlite'}"
    results = _open_together(url, 6)
    assert [r.stderr for r in results if r.returncode] == []
    engine = open_store(url)
    assert stored_revision(engine) == head_revision()
    engine.dispose()


@pytest.mark.postgres
def test_processes_opening_a_new_postgres_store_together_all_succeed(pg_cluster) -> None:
    name = f"wf_{uuid.uuid4().hex[:12]}"
    url = pg_cluster.create_database(name)  # empty: no template
    try:
        results = _open_together(url, 6)
        assert [r.stderr for r in results if r.returncode] == []
        engine = open_store(url)
        assert stored_revision(engine) == head_revision()
        engine.dispose()
    finally:
        pg_cluster.drop_database(name)


def test_a_new_sqlite_store_is_private(tmp_path) -> None:
    path = tmp_path / "data" / "wheelfarm.sqlite"
    open_store(f"sqlite:///{path}").dispose()
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_quick_head_revision_is_alembics() -> None:
    """Short commands compare the database with the head read from the files as text (no
    Alembic import); it must be the head Alembic itself finds."""
    assert quick_head_revision() == head_revision()
