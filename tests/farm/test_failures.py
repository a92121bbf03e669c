"""Stored failures: listed by category, counted, and triaged again from the command line."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from tests.farm.test_build_services import _claim, queued  # noqa: F401 (a fixture)
from tests.farm.test_cli_farm import wheelfarm
from tests.farm.test_queue import CP311, NOW, History
from wheelfarm.farm.builds import finish_build
from wheelfarm.farm.failures import retriage_builds
from wheelfarm.farm.jobs import schedule_project
from wheelfarm.farm.listings import failure_counts, list_builds
from wheelfarm.names import canonical
from wheelfarm.protocol import BuildReport
from wheelfarm.publish.incremental import publish_dirty
from wheelfarm.publish.regenerate import write_all
from wheelfarm.publish.tree import Tree
from wheelfarm.store.marks import WrittenMark, dirty_projects, mark_changed, mark_written
from wheelfarm.store.schema import builds, index_projects, jobs

UPSTREAM = "https://index.example.org/simple/"
_OOM = "=== build output ===\nvirtual memory exhausted: Cannot allocate memory\n"
_HEADER = "=== build output ===\nx.c:2:10: fatal error: ffi.h: No such file or directory\n"


def _fail(engine: Engine, log: str) -> int:
    build_id = _claim(engine)
    report = BuildReport(status="failed", reason="ERROR: Failed to build", duration=1, log=log)
    with engine.begin() as connection:
        finish_build(connection, build_id, "b1", report, now=NOW)
    return build_id


def _two_failures(engine: Engine) -> None:
    """foo 1.0 failed out of memory; bar 1.0 failed for a missing header."""
    _fail(engine, _OOM)
    History(engine)("bar", "1.0", "add source file bar-1.0.tar.gz")
    with engine.begin() as connection:
        schedule_project(connection, canonical("bar"), [CP311], now=NOW)
    _fail(engine, _HEADER)


def test_failed_builds_are_listed_and_counted_by_category(queued: Engine) -> None:  # noqa: F811
    _two_failures(queued)
    with queued.begin() as connection:
        memory = list_builds(connection, category="out-of-memory")
        every = list_builds(connection, failed_only=True)
        none = list_builds(connection, category="timeout")
        counts = failure_counts(connection)
    assert [(r.project, r.category) for r in memory] == [("foo", "out-of-memory")]
    assert [r.category for r in every] == ["missing-dependency", "out-of-memory"]  # bar, foo
    assert none == []
    assert counts == {"out-of-memory": 1, "missing-dependency": 1}
    assert memory[0].as_json()["category"] == "out-of-memory"


def test_a_failure_stored_before_triage_is_unknown_until_retriaged(queued: Engine) -> None:  # noqa: F811
    """As after the migration: no category, the old reason, a log without the master's block."""
    build_id = _fail(queued, _HEADER)
    with queued.begin() as connection:
        connection.execute(
            update(builds)
            .where(builds.c.id == build_id)
            .values(category=None, reason="old", log=zlib.compress(b"x.c:1:1: error: bad\n"))
        )
        connection.execute(update(jobs).values(reason="old"))
        connection.execute(update(index_projects).values(dirty=False))
        assert failure_counts(connection) == {"unknown": 1}
        assert [r.project for r in list_builds(connection, category="unknown")] == ["foo"]

        count = retriage_builds(connection)
        again = retriage_builds(connection)

        build = connection.execute(select(builds)).one()
        job = connection.execute(select(jobs)).one()
        dirty = connection.execute(select(index_projects.c.dirty)).scalars().all()
    assert (count.read, count.changed, again.changed) == (1, 1, 0)
    assert (build.category, build.reason, job.reason) == (
        "compiler-error",
        "x.c:1:1: error: bad",
        "x.c:1:1: error: bad",
    )
    stored = zlib.decompress(build.log)
    assert stored.endswith(b"category: compiler-error\ntelling line: x.c:1:1: error: bad\n")
    assert dirty == [True]  # its page shows the category: published again


def test_builds_lists_failures_by_category_and_retriages_from_the_command_line(
    tmp_path: Path,
    database_url: str,
    queued: Engine,  # noqa: F811
) -> None:
    _two_failures(queued)
    with queued.begin() as connection:
        connection.execute(update(builds).values(category=None))

    shown = wheelfarm(tmp_path, database_url, "builds", "--failed")
    assert shown.returncode == 0, shown.stderr
    assert f"bar 1.0 {CP311.name}: failed [unknown]  x.c:2:10: fatal error" in shown.stdout

    retriaged = wheelfarm(
        tmp_path, database_url, "builds", "--retriage", "--category", "out-of-memory", "--json"
    )
    assert retriaged.returncode == 0, retriaged.stderr
    assert "re-triaged 2 failed builds: 2 changed" in retriaged.stderr
    listed = json.loads(retriaged.stdout)
    assert [(e["project"], e["category"]) for e in listed] == [("foo", "out-of-memory")]
    assert listed[0]["reason"] == "virtual memory exhausted: Cannot allocate memory"

    wrong = wheelfarm(tmp_path, database_url, "builds", "--category", "gremlins")
    assert wrong.returncode == 2 and "gremlins" in wrong.stderr


def _publish(engine: Engine, tree: Tree, writer: str) -> None:
    if writer == "incremental":
        publish_dirty(engine, tree, upstream_simple_url=UPSTREAM, base_url="http://x")
    else:
        write_all(engine, tree, upstream_simple_url=UPSTREAM, base_url="http://x")


@pytest.mark.parametrize("writer", ["incremental", "full"])
def test_a_retriaged_log_is_published_again_with_its_new_category(
    queued: Engine,  # noqa: F811
    tmp_path: Path,
    writer: str,
) -> None:
    """The log at /logs/N.txt ends with the category the page shows, after a re-triage too."""
    build_id = _fail(queued, _HEADER)
    with queued.begin() as connection:  # as the rules of an older wheelfarm stored it
        log = zlib.decompress(connection.execute(select(builds.c.log)).scalar_one()).decode()
        told = "category: missing-dependency\ntelling line: x.c:2:10: fatal error: ffi.h: No such"
        assert told in log
        old = log.replace(told, "category: unknown\ntelling line: ERROR: Failed to build")
        connection.execute(
            update(builds).values(category="unknown", reason="old", log=zlib.compress(old.encode()))
        )
    tree = Tree(tmp_path / "www", tmp_path / "withdrawn")
    _publish(queued, tree, writer)
    published = tree.logs / f"{build_id}.txt"
    assert "category: unknown\n" in published.read_text()

    with queued.begin() as connection:
        assert retriage_builds(connection).changed == 1
    _publish(queued, tree, writer)
    assert f"{told} file or directory\n" in published.read_text()
    assert "category: unknown" not in published.read_text()
    with queued.begin() as connection:
        assert connection.execute(select(builds.c.log_stale)).scalars().all() == [False]
    _publish(queued, tree, writer)  # nothing stale, nothing dirty: nothing written again
    assert published.read_text().count("category: missing-dependency") == 1


def test_a_log_rewritten_again_while_it_was_published_stays_stale(
    queued: Engine,  # noqa: F811
) -> None:
    """The stale flag is cleared like the dirty mark: only if the project did not change since
    the writer read it (a second re-triage marks it changed)."""
    build_id = _fail(queued, _HEADER)
    with queued.begin() as connection:
        connection.execute(update(builds).values(log_stale=True))
        mark_changed(connection, ["foo"])
        read_at = dirty_projects(connection)["foo"]
        mark_changed(connection, ["foo"])  # rewritten again while it was being written
        moved_to = dirty_projects(connection)["foo"]
        mark_written(connection, [WrittenMark("foo", read_at, None, (build_id,))])
        kept = connection.execute(select(builds.c.log_stale)).scalar_one()
        mark_written(connection, [WrittenMark("foo", moved_to, None, (build_id,))])
        cleared = connection.execute(select(builds.c.log_stale)).scalar_one()
    assert (kept, cleared) == (True, False)
