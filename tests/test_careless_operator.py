"""Commands run from the wrong folder, or naming a project that is not there, say so.

A read-only command with no database used to make an empty one in ``./wheelfarm-data`` and
print nothing; now it exits 2, says where it looked and how to point it at the data.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wheelfarm.store.database import open_store

READ_ONLY = [
    ("status",),
    ("show", "demo"),
    ("builds",),
    ("targets", "list"),
    ("builders", "list"),
    ("distros", "list"),
    ("audit",),
    ("write",),
    ("write", "--all"),
    ("rebuild", "demo"),
    ("skip", "demo", "--reason", "why"),
    ("remove", "demo"),
]


def wheelfarm(cwd: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHEELFARM_")}
    env.update(WHEELFARM_UPSTREAM="http://127.0.0.1:9/simple/", WHEELFARM_RETRIES="0", **extra)
    return subprocess.run(
        [sys.executable, "-m", "wheelfarm", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_a_read_only_command_with_no_database_says_where_it_looked_and_creates_nothing(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    result = wheelfarm(tmp_path, *args)
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert f"no wheelfarm database at {tmp_path}/wheelfarm-data/wheelfarm.sqlite" in message
    assert "--data-dir, WHEELFARM_DATA_DIR or data_dir in wheelfarm.toml" in message
    assert list(tmp_path.iterdir()) == []


def test_serve_with_no_published_tree_says_where_it_looked(tmp_path: Path) -> None:
    result = wheelfarm(tmp_path, "serve", "--port", "0")
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert f"'{Path('wheelfarm-data') / 'www'}': no published index there" in message
    assert "--root, --data-dir, WHEELFARM_DATA_DIR" in message
    assert list(tmp_path.iterdir()) == []


def test_an_empty_postgresql_database_is_not_migrated_by_a_read_only_command(
    tmp_path: Path, pg_cluster
) -> None:
    url = pg_cluster.create_database("careless_empty")
    try:
        result = wheelfarm(tmp_path, "status", WHEELFARM_DATABASE=url)
        assert result.returncode == 2, result.stderr
        assert "no wheelfarm database at postgresql" in result.stderr
        assert "--database or WHEELFARM_DATABASE" in " ".join(result.stderr.split())
        migrated = wheelfarm(tmp_path, "targets", "add", WHEELFARM_DATABASE=url)
        assert migrated.returncode == 0, migrated.stderr  # a command that writes still creates
    finally:
        pg_cluster.drop_database("careless_empty")


@pytest.mark.parametrize(
    "args",
    [
        ("builds", "--project", "No-Such"),
        ("rebuild", "No-Such"),
        ("skip", "No-Such", "--reason", "why"),
        ("remove", "No-Such"),
    ],
    ids=" ".join,
)
def test_an_unknown_project_name_is_an_error(
    tmp_path: Path, database_url: str, args: tuple[str, ...]
) -> None:
    open_store(database_url).dispose()
    result = wheelfarm(tmp_path, *args, WHEELFARM_DATABASE=database_url)
    assert result.returncode == 2, result.stdout
    assert "no project named 'No-Such'" in result.stderr
