"""Operator commands on wheels: add, import, remove (run as a user runs them)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sqlalchemy import select

from tests.farm.test_cli_farm import wheelfarm
from tests.farm.test_intake import make_wheel
from tests.fixtures.fake_upstream import FakeUpstream
from wheelfarm.store.database import open_store
from wheelfarm.store.schema import jobs


def builds(tmp_path: Path, database: str, env_dir: Path) -> list[dict[str, object]]:
    listed = wheelfarm(tmp_path, database, "--data-dir", str(env_dir), "builds", "--json")
    assert listed.returncode == 0, listed.stderr
    found: list[dict[str, object]] = json.loads(listed.stdout)
    return found


def test_add_import_and_remove(tmp_path: Path, database_url: str) -> None:
    data = tmp_path / "data"
    with FakeUpstream() as upstream:
        upstream.create("foo")
        upstream.add_file("foo", "1.0", "foo-1.0.tar.gz")
        target = "cp311-cp311-linux_armv7l"
        assert wheelfarm(tmp_path, database_url, "targets", "add", target).returncode == 0
        added = wheelfarm(tmp_path, database_url, "add", "foo", upstream=upstream.simple_url)
        assert added.returncode == 0, added.stderr
        assert "foo: 3 changes, 1 build queued first" in added.stdout
        missing = wheelfarm(tmp_path, database_url, "add", "nope", upstream=upstream.simple_url)
        assert missing.returncode == 2 and "not found upstream" in missing.stderr
    engine = open_store(database_url)
    with engine.connect() as connection:
        assert connection.execute(select(jobs.c.state, jobs.c.urgent)).one() == ("pending", True)
    engine.dispose()

    # A pure wheel built elsewhere, imported: the pending job is settled as built.
    wheel = tmp_path / "foo-1.0-py3-none-any.whl"
    shutil.copy(make_wheel(tmp_path, wheel.name), wheel)
    imported = wheelfarm(tmp_path, database_url, "--data-dir", str(data), "import", str(wheel))
    assert imported.returncode == 0, imported.stderr
    assert (data / "www" / "files" / "foo" / wheel.name).exists()
    assert builds(tmp_path, database_url, data) == [
        {
            "project": "foo",
            "version": "1.0",
            "target": target,
            "status": "built",
            "files": [wheel.name],
        }
    ]
    again = wheelfarm(tmp_path, database_url, "--data-dir", str(data), "import", str(wheel))
    assert again.returncode == 1 and "already published" in again.stderr
    stranger = tmp_path / "bar-1.0-py3-none-any.whl"
    shutil.copy(make_wheel(tmp_path, stranger.name), stranger)
    refused = wheelfarm(tmp_path, database_url, "--data-dir", str(data), "import", str(stranger))
    assert refused.returncode == 1 and "bar 1.0 is not a live release here" in refused.stderr

    # Removed with a skip: unpublished, and skipped from now on.
    removed = wheelfarm(
        tmp_path, database_url, "--data-dir", str(data), "remove", "foo", "1.0", "--skip", "bad"
    )
    assert removed.returncode == 0, removed.stderr
    assert "removed 1 wheel " in removed.stdout
    assert not (data / "www" / "files" / "foo" / wheel.name).exists()
    (entry,) = builds(tmp_path, database_url, data)
    assert (entry["status"], entry["reason"], entry["files"]) == ("skipped", "skipped: bad", [])
