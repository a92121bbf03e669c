"""The command line, run as a user runs it: ``python -m wheelfarm`` against a fake upstream."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.fixtures.changelog_gen import synthetic_changelog
from tests.fixtures.fake_upstream import FakeUpstream
from wheelfarm.store.database import open_store
from wheelfarm.store.journal import position
from wheelfarm.store.schema import events, files, projects, releases


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(max_rows=50) as fake:
        fake.create("Demo.Pkg")
        fake.set_summary("Demo.Pkg", "A demo")
        fake.add_file("Demo.Pkg", "1.0", "demo_pkg-1.0.tar.gz", requires_python=">=3.8")
        fake.add_file("Demo.Pkg", "1.0", "demo_pkg-1.0-py3-none-any.whl", requires_python=">=3.8")
        fake.add_file("Demo.Pkg", "1.1", "demo_pkg-1.1.tar.gz")
        fake.yank("Demo.Pkg", "1.1", reason="broken")
        fake.release("Demo.Pkg", "2.0rc1")
        yield fake


def run(
    tmp_path: Path, upstream: FakeUpstream, *args: str, database: str, projects: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "WHEELFARM_UPSTREAM": upstream.simple_url,
        "WHEELFARM_DATABASE": database,
        "WHEELFARM_PROJECTS": projects,
        "WHEELFARM_RETRY_WAIT": "0.01",
    }
    return subprocess.run(
        [sys.executable, "-m", "wheelfarm", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_sync_named_project_then_show_json(
    tmp_path: Path, upstream: FakeUpstream, database_url: str
) -> None:
    synced = run(tmp_path, upstream, "sync", "--project", "demo-pkg", database=database_url)
    assert synced.returncode == 0, synced.stderr
    assert "synced 1 project:" in synced.stdout
    shown = run(tmp_path, upstream, "show", "DEMO_pkg", "--json", database=database_url)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == {
        "name": "demo-pkg",
        "display_name": "Demo.Pkg",
        "summary": "A demo",
        "status": "live",
        "last_serial": upstream.last_serial,
        "releases": {
            "1.0": {
                "yanked": False,
                "yanked_reason": None,
                "prerelease": False,
                "requires_python": ">=3.8",
                "files": ["demo_pkg-1.0-py3-none-any.whl", "demo_pkg-1.0.tar.gz"],
            },
            "1.1": {
                "yanked": True,
                "yanked_reason": "broken",
                "prerelease": False,
                "requires_python": None,
                "files": ["demo_pkg-1.1.tar.gz"],
            },
            "2.0rc1": {
                "yanked": False,
                "yanked_reason": None,
                "prerelease": True,
                "requires_python": None,
                "files": [],
            },
        },
    }


def test_sync_follows_the_changelog_when_no_projects_are_named(
    tmp_path: Path, upstream: FakeUpstream, database_url: str
) -> None:
    synced = run(tmp_path, upstream, "sync", database=database_url)
    assert synced.returncode == 0, synced.stderr
    assert f"applied 6 events (serial 0 to {upstream.last_serial})" in synced.stdout
    status = run(tmp_path, upstream, "status", "--json", database=database_url)
    counts = json.loads(status.stdout)
    assert (counts["projects"], counts["releases"], counts["files"]) == (1, 3, 3)
    assert (counts["last_serial"], counts["unreconciled_projects"]) == (upstream.last_serial, 0)
    # Reconciled: the yank reason came from the page.
    shown = json.loads(
        run(tmp_path, upstream, "show", "demo-pkg", "--json", database=database_url).stdout
    )
    assert shown["releases"]["1.1"]["yanked_reason"] == "broken"


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ([], "demo-pkg: project is unknown"),
        (["remove_project"], "demo-pkg: project is deleted"),
        (["quarantine_project"], "demo-pkg: project is quarantined"),
    ],
)
def test_show_of_a_project_that_is_not_live_exits_1(
    tmp_path: Path, upstream: FakeUpstream, database_url: str, script: list[str], message: str
) -> None:
    open_store(database_url).dispose()  # show makes no database: it reads one
    if script:
        run(tmp_path, upstream, "sync", database=database_url)
        for action in script:
            getattr(upstream, action)("Demo.Pkg")
        run(tmp_path, upstream, "sync", "--no-reconcile", database=database_url)
    shown = run(tmp_path, upstream, "show", "demo-pkg", "--json", database=database_url)
    assert shown.returncode == 1
    assert message in shown.stderr


def test_audit_reports_then_fixes(
    tmp_path: Path, upstream: FakeUpstream, database_url: str
) -> None:
    run(tmp_path, upstream, "sync", "--project", "demo-pkg", database=database_url)
    upstream.remove_file("Demo.Pkg", "1.0", "demo_pkg-1.0-py3-none-any.whl")
    audit = run(tmp_path, upstream, "audit", "--project", "demo-pkg", database=database_url)
    assert audit.returncode == 1
    assert "demo-pkg 1.0 demo_pkg-1.0-py3-none-any.whl: file gone upstream" in audit.stdout
    fixed = run(tmp_path, upstream, "audit", "--fix", database=database_url)
    assert fixed.returncode == 0, fixed.stderr
    clean = run(tmp_path, upstream, "audit", database=database_url)
    assert clean.returncode == 0 and "0 differ" in clean.stdout


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("WHEELFARM_RETRIES", "many", "setting 'retries' = 'many': expected a whole number"),
        ("WHEELFARM_UPSTREAM", "ftp://example.org/simple/", "must be an http:// or https:// URL"),
    ],
)
def test_bad_settings_are_clear_errors(
    tmp_path: Path, upstream: FakeUpstream, variable: str, value: str, message: str
) -> None:
    env = {**os.environ, variable: value}
    result = subprocess.run(
        [sys.executable, "-m", "wheelfarm", "status"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def _dump(database: str) -> dict[str, list[tuple[object, ...]]]:
    engine = open_store(database)
    with engine.connect() as connection:
        dump = {
            table.name: sorted(tuple(row) for row in connection.execute(select(table)))
            for table in (projects, releases, files, events)
        }
    engine.dispose()
    return dump


def test_killed_sync_resumes_and_loses_nothing(
    tmp_path: Path, database_url: str, pg_or_sqlite_second: str
) -> None:
    script = synthetic_changelog(20_000, seed=7)
    with FakeUpstream(script, max_rows=200) as upstream:
        env = {
            **os.environ,
            "WHEELFARM_UPSTREAM": upstream.simple_url,
            "WHEELFARM_DATABASE": database_url,
            "WHEELFARM_PROJECTS": "",
        }
        command = [sys.executable, "-m", "wheelfarm", "sync", "--no-reconcile"]
        process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL)
        engine = open_store(database_url)
        reached = 0
        deadline = time.monotonic() + 60
        while reached < 2_000 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.02)
            with engine.connect() as connection:
                reached = position(connection)
        process.send_signal(signal.SIGKILL)
        process.wait()
        with engine.connect() as connection:
            at_kill = position(connection)
            journalled = connection.execute(select(func.max(events.c.serial))).scalar()
        engine.dispose()
        assert 0 < at_kill < upstream.last_serial, "the kill must land mid-way"
        assert journalled == at_kill  # the journal and the position moved together
        resumed = run(tmp_path, upstream, "sync", "--no-reconcile", database=database_url)
        assert resumed.returncode == 0, resumed.stderr
        assert f"(serial {at_kill} to {upstream.last_serial})" in resumed.stdout
        clean = run(tmp_path, upstream, "sync", "--no-reconcile", database=pg_or_sqlite_second)
        assert clean.returncode == 0, clean.stderr
    assert _dump(database_url) == _dump(pg_or_sqlite_second)
    assert len(_dump(database_url)["events"]) == len(script)


@pytest.fixture
def pg_or_sqlite_second(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> str:
    """A second, empty database on the same engine, for an uninterrupted run to compare with."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'clean.sqlite'}"
    cluster = request.getfixturevalue("pg_cluster")
    name = f"clean_{tmp_path.name[-20:].replace('-', '_').lower()}"
    url: str = cluster.create_database(name, template="wheelfarm_template")
    request.addfinalizer(lambda: cluster.drop_database(name))
    return url


def test_follow_keeps_following_until_sigterm(
    tmp_path: Path, upstream: FakeUpstream, database_url: str
) -> None:
    env = {
        **os.environ,
        "WHEELFARM_UPSTREAM": upstream.simple_url,
        "WHEELFARM_DATABASE": database_url,
        "WHEELFARM_PROJECTS": "",
        "WHEELFARM_POLL_SECONDS": "0.2",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "wheelfarm", "follow"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        upstream.add_file("Demo.Pkg", "3.0", "demo_pkg-3.0.tar.gz")  # arrives while it follows
        deadline = time.monotonic() + 60
        releases: dict[str, object] = {}
        while time.monotonic() < deadline and "3.0" not in releases:
            time.sleep(0.3)
            result = run(tmp_path, upstream, "show", "demo-pkg", "--json", database=database_url)
            if result.returncode == 0:
                releases = json.loads(result.stdout)["releases"]
        assert "3.0" in releases
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0
    assert "stopped; everything applied so far is saved" in stderr
