"""Shared fixtures: every storage test runs on SQLite and on a throwaway PostgreSQL cluster."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.pg_cluster import PostgresUnavailable, ThrowawayCluster
from wheelfarm.store.database import create_store_engine, open_store, upgrade

TEMPLATE = "wheelfarm_template"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[ThrowawayCluster]:
    """One PostgreSQL cluster per test session, with a migrated template database.

    Without server binaries the PostgreSQL half of the suite is skipped, with the reason;
    ``WHEELFARM_REQUIRE_POSTGRES=1`` (set by CI) turns that skip into a failure.
    """
    cluster = ThrowawayCluster()
    try:
        cluster.start()
    except PostgresUnavailable as error:
        if os.environ.get("WHEELFARM_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required (WHEELFARM_REQUIRE_POSTGRES=1): {error}")
        pytest.skip(f"no PostgreSQL server installed: {error}")
    template_url = cluster.create_database(TEMPLATE)
    engine = create_store_engine(template_url)
    upgrade(engine)
    engine.dispose()
    yield cluster
    cluster.stop()


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty-of-data database URL on each engine."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'wheelfarm.sqlite'}"
        return
    cluster: ThrowawayCluster = request.getfixturevalue("pg_cluster")
    name = f"wf_{uuid.uuid4().hex[:12]}"
    url = cluster.create_database(name, template=TEMPLATE)
    yield url
    cluster.drop_database(name)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An open store (schema at head) on each engine."""
    store = open_store(database_url)
    yield store
    store.dispose()
