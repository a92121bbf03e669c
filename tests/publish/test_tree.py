"""Writing the published tree: atomic, only what changed, and everything down for the dead."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, update

from tests.publish.states import UPSTREAM, State
from wheelfarm.publish.failures import PublishFailures
from wheelfarm.publish.incremental import SiteClock, publish_dirty
from wheelfarm.publish.regenerate import write_all
from wheelfarm.publish.tree import SIBLINGS_MARK, Tree
from wheelfarm.publish.write_report import WriteReport
from wheelfarm.store.marks import dirty_projects, mark_changed
from wheelfarm.store.schema import builds

BASE = "https://wheels.example.org"


@pytest.fixture
def state(engine: Engine, tmp_path: Path) -> State:
    state = State(engine, tmp_path)
    state.target()
    return state


def everything(state: State) -> WriteReport:
    return write_all(state.engine, state.tree, upstream_simple_url=UPSTREAM, base_url=BASE)


def dirty(state: State, clock: SiteClock | None = None) -> WriteReport:
    return publish_dirty(
        state.engine, state.tree, upstream_simple_url=UPSTREAM, base_url=BASE, clock=clock
    )


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file's (inode, mtime in ns): a rewrite changes one or the other."""
    return {
        str(path.relative_to(root)): (path.stat().st_ino, path.stat().st_mtime_ns)
        for path in root.rglob("*")
        if path.is_file() and path.name != ".lock"
    }


def test_a_full_write_publishes_every_page(state: State) -> None:
    state.release("foo", "1.0")
    state.release("foo", "2.0")
    wheel = state.import_wheel("foo-1.0-py3-none-any.whl", requires_python=">=3.8")
    state.schedule("foo")
    build_id = state.build(None, log="building foo\nall good\n", status="failed")
    report = everything(state)
    www = state.tree.root
    for relative in (
        "simple/index.html",
        "simple/index.json",
        "simple/foo/index.html",
        "simple/foo/index.json",
        "project/foo/index.html",
        "project/foo/json/index.json",
        "badges/foo.svg",
        "index.html",
        "search/index.html",
        "packages.json",
        "sitemap.xml",
        "404.html",
    ):
        assert (www / relative).is_file(), relative
    assert report.site and "foo" in report.changed
    assert any((www / "static").iterdir())
    published_log = (www / "logs" / f"{build_id}.txt").read_text()
    assert published_log.startswith("building foo\nall good\n=== wheelfarm master ===\n")
    metadata = www / "files" / "foo" / f"{wheel.name}.metadata"
    data = json.loads((www / "simple" / "foo" / "index.json").read_text())
    (entry,) = data["files"]
    assert entry["core-metadata"]["sha256"] == hashlib.sha256(metadata.read_bytes()).hexdigest()
    assert metadata.read_bytes().startswith(b"Metadata-Version: 2.1\nName: foo\n")
    assert BASE.encode() in (www / "sitemap.xml").read_bytes()
    # Nothing left behind: no temporary files anywhere.
    assert not [p for p in www.rglob(".*") if p.name not in (".lock", SIBLINGS_MARK)]
    # A second full write changes nothing.
    before = snapshot(www)
    again = everything(state)
    assert again.written == 0 and again.removed == 0
    assert snapshot(www) == before


def test_a_change_rewrites_only_its_project_and_the_pages_summing_up_every_project(
    state: State,
) -> None:
    state.release("foo", "1.0")
    state.release("bar", "1.0")
    state.import_wheel("bar-1.0-py3-none-any.whl")
    everything(state)
    www = state.tree.root
    before = snapshot(www)

    state.yank("foo", "1.0", "oops")  # foo's pages change, the set of projects does not
    report = dirty(state)
    assert report.changed == ["foo"] and report.site
    after = snapshot(www)
    changed = {path for path in after if after[path] != before.get(path)}
    # The simple root carries foo's new serial, the home page the counts; nothing else moves.
    summing_up = {"simple/index.html", "simple/index.json", "index.html"}
    summing_up |= {f"{path}.gz" for path in summing_up}
    assert changed and all("foo" in path or path in summing_up for path in changed), changed
    assert all(
        after[path] == before[path]
        for path in before
        if "foo" not in path and path not in summing_up
    )
    with state.engine.connect() as connection:
        assert dirty_projects(connection) == {}
    assert dirty(state).projects == 0  # nothing dirty, nothing done

    state.release("baz", "1.0")  # a new project: the root lists it
    report = dirty(state)
    assert report.site and report.changed == ["baz"]
    assert b"/simple/baz/" in (www / "simple" / "index.html").read_bytes()
    assert snapshot(www)["simple/bar/index.html"] == before["simple/bar/index.html"]


def test_a_deleted_project_answers_404_everywhere_and_comes_back_with_its_wheels(
    state: State,
) -> None:
    state.release("foo", "1.0")
    state.release("bar", "1.0")
    state.release("foo", "2.0")
    wheel = state.import_wheel("foo-1.0-py3-none-any.whl")
    state.schedule("foo")
    build_id = state.build(None, log="a log\n", status="failed")
    everything(state)
    www = state.tree.root
    assert wheel.exists() and (www / "logs" / f"{build_id}.txt").exists()

    state.event("foo", None, "remove")
    report = dirty(state)
    assert report.site  # the root no longer lists it
    left = [p for p in www.rglob("*") if "foo" in str(p.relative_to(www))]
    assert left == [], left
    assert not (www / "logs" / f"{build_id}.txt").exists()
    assert b"/simple/foo/" not in (www / "simple" / "index.html").read_bytes()
    assert (state.tree.withdrawn / "foo" / wheel.name).exists()  # kept out of the tree

    state.release("foo", "1.0")  # registered again: the same release is back
    dirty(state)
    assert wheel.exists()
    assert (www / "simple" / "foo" / "index.html").exists()


def test_a_deleted_release_loses_its_wheels_and_metadata(state: State) -> None:
    state.release("foo", "1.0")
    state.release("foo", "2.0")
    old = state.import_wheel("foo-1.0-py3-none-any.whl")
    new = state.import_wheel("foo-2.0-py3-none-any.whl")
    everything(state)
    state.event("foo", "1.0", "remove release")
    dirty(state)
    assert not old.exists() and not Path(f"{old}.metadata").exists()
    assert new.exists() and Path(f"{new}.metadata").exists()
    page = (state.tree.root / "simple" / "foo" / "index.html").read_text()
    assert old.name not in page and new.name in page


def test_a_quarantined_project_is_taken_down(state: State) -> None:
    state.release("foo", "1.0")
    everything(state)
    state.event("foo", None, "project quarantined")
    dirty(state)
    assert not (state.tree.root / "project" / "foo").exists()
    assert not (state.tree.root / "badges" / "foo.svg").exists()


def test_stale_files_of_unknown_projects_go_at_a_full_write(state: State) -> None:
    stray = state.tree.root / "simple" / "ghost"
    stray.mkdir(parents=True)
    (stray / "index.html").write_text("old")
    (state.tree.root / "badges").mkdir(parents=True)
    (state.tree.root / "badges" / "ghost.svg").write_text("old")
    state.release("foo", "1.0")
    everything(state)
    assert not stray.exists()
    assert not (state.tree.root / "badges" / "ghost.svg").exists()


def test_counts_refresh_when_the_clock_says_so(state: State) -> None:
    state.release("foo", "1.0")
    everything(state)
    clock = SiteClock(refresh_seconds=0.0)
    state.yank("foo", "1.0", None)
    assert dirty(state, clock).site
    clock = SiteClock(refresh_seconds=3600.0, written_at=1e18)
    state.yank("foo", "1.0", "again")
    assert not dirty(state, clock).site


def test_an_interrupted_write_leaves_no_partial_file(state: State, tmp_path: Path) -> None:
    target = tmp_path / "out" / "page.html"
    assert state.tree.put(target, b"first")
    assert not state.tree.put(target, b"first")  # same bytes: untouched
    inode = target.stat().st_ino

    class Boom(Exception):
        pass

    def explode(*_args: object) -> None:
        raise Boom

    original = os.replace
    os.replace = explode  # type: ignore[assignment]
    try:
        with pytest.raises(Boom):
            state.tree.put(target, b"second")
    finally:
        os.replace = original
    assert target.read_bytes() == b"first" and target.stat().st_ino == inode
    assert sorted(p.name for p in target.parent.iterdir()) == ["page.html"]


def test_worker_processes_write_what_one_process_writes(
    state: State, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("foo", "bar", "baz"):
        state.release(name, "1.0")
        state.import_wheel(f"{name}-1.0-py3-none-any.whl")
    report = everything(state)  # one process: fewer than two chunks
    monkeypatch.setattr("wheelfarm.publish.queries.CHUNK", 1)  # three chunks, shared by two workers
    alone = snapshot(state.tree.root)
    again = write_all(
        state.engine, state.tree, upstream_simple_url=UPSTREAM, base_url=BASE, workers=2
    )
    assert (again.projects, again.written, again.removed) == (3, 0, 0)
    assert snapshot(state.tree.root) == alone
    state.yank("bar", "1.0", "broken")
    (state.tree.root / "badges" / "baz.svg").write_bytes(b"damaged")
    again = write_all(
        state.engine, state.tree, upstream_simple_url=UPSTREAM, base_url=BASE, workers=2
    )
    assert sorted(again.changed) == ["bar", "baz"]
    assert report.projects == again.projects == 3
    with state.engine.connect() as connection:
        assert not dirty_projects(connection)
    for ghost in ("aaa-ghost", "zzz-ghost"):  # in the tree only, before and after every name
        (state.tree.root / "badges" / f"{ghost}.svg").write_text("old")
    again = write_all(
        state.engine, state.tree, upstream_simple_url=UPSTREAM, base_url=BASE, workers=2
    )
    assert (again.projects, again.removed, sorted(again.changed)) == (
        5,
        2,
        ["aaa-ghost", "zzz-ghost"],
    )
    assert snapshot(state.tree.root).keys() == alone.keys()


def test_a_full_write_syncs_only_when_it_changed_something(
    state: State, monkeypatch: pytest.MonkeyPatch
) -> None:
    state.release("foo", "1.0")
    state.import_wheel("foo-1.0-py3-none-any.whl")
    syncs: list[None] = []
    real_sync = os.sync
    monkeypatch.setattr(os, "sync", lambda: (syncs.append(None), real_sync())[1])  # type: ignore[func-returns-value]
    assert everything(state).written and len(syncs) == 1
    unchanged = everything(state)
    assert (unchanged.written, unchanged.removed) == (0, 0) and len(syncs) == 1
    state.yank("foo", "1.0", "broken")
    assert everything(state).written and len(syncs) == 2


def test_a_project_that_cannot_be_published_stops_no_other_and_is_tried_again_later(
    state: State,
) -> None:
    """A row no page can show (a duration of infinity, as builders could once send) fails its
    own project, with the reason; the others publish; once the row is mended it publishes."""
    state.release("broken", "1.0")
    state.release("fine", "1.0")
    state.schedule("broken")
    state.build("broken-1.0-cp311-cp311-linux_armv7l.whl", log="ok")
    with state.engine.begin() as connection:
        connection.execute(update(builds).values(duration=float("inf")))
        mark_changed(connection, ["broken", "fine"])
    failures = PublishFailures()
    report = publish_dirty(
        state.engine,
        state.tree,
        upstream_simple_url=UPSTREAM,
        base_url=BASE,
        failures=failures,
    )
    assert set(report.failed) == {"broken"}
    assert "OverflowError" in report.failed["broken"]
    assert (state.tree.root / "simple" / "fine" / "index.html").exists()
    with state.engine.connect() as connection:
        assert "broken" in dirty_projects(connection)  # still to publish
        assert "fine" not in dirty_projects(connection)
    # not tried again at once: the failure waits its turn
    again = publish_dirty(
        state.engine, state.tree, upstream_simple_url=UPSTREAM, base_url=BASE, failures=failures
    )
    assert again.failed == {} and "broken" not in again.changed
    with state.engine.begin() as connection:
        connection.execute(update(builds).values(duration=2.5))
    failures.projects["broken"].retry_at = 0.0  # its wait is over
    mended = publish_dirty(
        state.engine, state.tree, upstream_simple_url=UPSTREAM, base_url=BASE, failures=failures
    )
    assert mended.failed == {} and "broken" in mended.changed
    assert failures.projects == {}
    assert (state.tree.root / "project" / "broken" / "index.html").exists()


# --- the gzip siblings' mark (tree.SIBLINGS_MARK) -------------------------------------------

BIG = b"<p>" + b"wheel " * 400 + b"</p>"  # above COMPRESS_ABOVE: it gets a sibling
SMALL = b"<p>wheel</p>"


def siblings(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*.gz")}


def test_a_full_write_gives_a_tree_from_before_siblings_its_siblings_then_marks_it(
    state: State,
) -> None:
    state.release("foo", "1.0")
    for number in range(6):  # a simple page above 1 KB
        state.import_wheel(f"foo-1.0-{number + 1}-py3-none-any.whl")
    everything(state)
    root = state.tree.root
    written = siblings(root)
    assert "simple/foo/index.html.gz" in written
    assert state.tree.siblings_marked()
    for name in written:  # as a tree written before siblings existed
        (root / name).unlink()
    (root / SIBLINGS_MARK).unlink()
    report = everything(state)
    assert (report.written, siblings(root)) == (0, written)  # no page changed: siblings only
    assert state.tree.siblings_marked()


def test_a_marked_tree_is_trusted_and_a_removed_mark_makes_the_next_write_look(
    state: State,
) -> None:
    state.release("foo", "1.0")
    for number in range(6):
        state.import_wheel(f"foo-1.0-{number + 1}-py3-none-any.whl")
    everything(state)
    sibling = state.tree.root / "simple" / "foo" / "index.html.gz"
    sibling.unlink()  # by hand: nothing the writer does leaves a page without its sibling
    everything(state)
    assert not sibling.exists()  # a regeneration does not stat every page's sibling
    (state.tree.root / SIBLINGS_MARK).unlink()
    everything(state)
    assert sibling.exists()


@pytest.mark.parametrize(
    ("change", "sibling_left"),
    [
        (lambda tree, page: tree.put(page, SMALL), False),  # shrank below 1 KB
        (lambda tree, page: tree.remove(page), False),  # taken down
        (lambda tree, page: tree.put(page, BIG + b"more"), True),  # rewritten, still big
        (lambda tree, page: tree.put(page, BIG), True),  # unchanged
    ],
    ids=["shrunk", "removed", "grown", "unchanged"],
)
def test_the_mark_goes_before_a_page_can_be_left_without_its_sibling(
    tmp_path: Path, change: Callable[[Tree, Path], bool], sibling_left: bool
) -> None:
    tree = Tree(tmp_path / "www", tmp_path / "withdrawn")
    page = tree.simple / "foo" / "index.html"
    tree.put(page, BIG)
    tree.mark_siblings()
    tree.siblings_complete = True
    change(tree, page)
    assert page.with_name("index.html.gz").exists() is sibling_left
    assert tree.siblings_marked() is sibling_left
    assert tree.siblings_complete is sibling_left
