"""Tests for the throwaway PostgreSQL cluster the store tests are built on."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine, text

from tests import pg_cluster
from tests.pg_cluster import (
    ClusterStartError,
    PostgresUnavailable,
    ThrowawayCluster,
    find_pg_bindir,
)

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThrowawayCluster]:
    """One cluster for the module: starting one costs about a second."""
    try:
        with ThrowawayCluster() as running:
            yield running
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))


def test_find_pg_bindir_finds_installed_server() -> None:
    bindir = find_pg_bindir()
    if not Path("/usr/lib/postgresql/15/bin/initdb").exists():
        pytest.skip("PostgreSQL 15 server is not installed here")
    assert bindir is not None
    for name in ("initdb", "pg_ctl", "postgres"):
        assert (bindir / name).is_file()


def test_find_pg_bindir_prefers_newest_debian_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for version in ("9.6", "15", "13", "16"):
        bindir = tmp_path / version / "bin"
        bindir.mkdir(parents=True)
        # "16" is incomplete, so it must be passed over.
        names = ("initdb",) if version == "16" else ("initdb", "pg_ctl", "postgres")
        for name in names:
            exe = bindir / name
            exe.write_text("#!/bin/sh\n")
            exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(pg_cluster, "DEBIAN_PG_ROOT", tmp_path)
    assert find_pg_bindir() == tmp_path / "15" / "bin"


def test_missing_binaries_raise_unavailable(tmp_path: Path) -> None:
    with pytest.raises(PostgresUnavailable, match=str(tmp_path)):
        ThrowawayCluster(bindir=tmp_path).start()


def test_create_from_template_connect_and_drop(cluster: ThrowawayCluster) -> None:
    template_url = cluster.create_database("tmpl_pgc")
    engine = create_engine(template_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("create table marker (v int)"))
            conn.execute(text("insert into marker values (42)"))
    finally:
        # A template must have no open sessions when it is copied.
        engine.dispose()

    url = cluster.create_database("copy_pgc", template="tmpl_pgc")
    assert url == cluster.url("copy_pgc")
    assert url.startswith(f"postgresql+psycopg://postgres@127.0.0.1:{cluster.port}/")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("select 1")).scalar_one() == 1
            assert conn.execute(text("select v from marker")).scalar_one() == 42
        # Left open on purpose: drop_database must force it closed.
        lingering = engine.connect()
        cluster.drop_database("copy_pgc")
        lingering.invalidate()
        lingering.close()
    finally:
        engine.dispose()
    cluster.drop_database("tmpl_pgc")

    with (
        pytest.raises(psycopg.OperationalError),
        psycopg.connect(host="127.0.0.1", port=cluster.port, user="postgres", dbname="copy_pgc"),
    ):
        pass


def test_server_settings(cluster: ThrowawayCluster) -> None:
    with psycopg.connect(
        host="127.0.0.1", port=cluster.port, user="postgres", dbname="postgres"
    ) as conn:
        settings: dict[str, str] = dict(
            conn.execute(
                "select name, setting from pg_settings where name = any(%s)",
                [["fsync", "synchronous_commit", "full_page_writes", "listen_addresses"]],
            ).fetchall()
        )
        encoding = conn.execute("show server_encoding").fetchone()
    assert settings == {
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "listen_addresses": "127.0.0.1",
    }
    assert encoding == ("UTF8",)


def test_stop_is_idempotent_and_removes_files() -> None:
    try:
        running = ThrowawayCluster()
        running.start()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    tmpdir = running.datadir.parent
    port = running.port
    assert tmpdir.is_dir()
    running.stop()
    running.stop()
    assert not tmpdir.exists()
    # The server is gone: nothing accepts connections on its port any more.
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    with pytest.raises(RuntimeError):
        running.url()


def _held_port(stack: list[socket.socket]) -> int:
    """Listen on a free loopback port so the server cannot bind it."""
    sock = socket.socket()
    stack.append(sock)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port: int = sock.getsockname()[1]
    return port


def test_start_retries_when_port_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    held: list[socket.socket] = []
    try:
        taken = _held_port(held)
        ports = iter([taken, pg_cluster._free_port()])
        monkeypatch.setattr(pg_cluster, "_free_port", lambda: next(ports))
        try:
            with ThrowawayCluster() as running:
                assert running.port != taken
                with psycopg.connect(running.url().replace("+psycopg", "")) as conn:
                    assert conn.execute("select 1").fetchone() == (1,)
        except PostgresUnavailable as exc:
            pytest.skip(str(exc))
    finally:
        for sock in held:
            sock.close()


def test_start_failure_reports_log_and_cleans_up(monkeypatch: pytest.MonkeyPatch) -> None:
    held: list[socket.socket] = []
    created: list[str] = []
    real_mkdtemp = tempfile.mkdtemp

    def recording_mkdtemp(*args: Any, **kwargs: Any) -> str:
        path: str = real_mkdtemp(*args, **kwargs)
        created.append(path)
        return path

    try:
        monkeypatch.setattr(pg_cluster, "_free_port", lambda: _held_port(held))
        monkeypatch.setattr(tempfile, "mkdtemp", recording_mkdtemp)
        running = ThrowawayCluster()
        try:
            with pytest.raises(ClusterStartError, match=r"(?s)attempt 3.*Address already in use"):
                running.start()
        except PostgresUnavailable as exc:
            pytest.skip(str(exc))
    finally:
        for sock in held:
            sock.close()
    assert len(held) == 3
    assert created
    assert not Path(created[0]).exists()
    running.stop()
