"""The pages that sum up every project (the simple root, the home page) follow the projects.

A client that reads the root's ``_last-serial`` for a project (a mirror deciding what to fetch)
must find the project page's own serial there, and the home page's counts must include what was
just published: at once after ``wheelfarm write``, within the publisher's refresh in ``up``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.publish.states import UPSTREAM, State
from wheelfarm.publish.incremental import SiteClock, publish_dirty
from wheelfarm.publish.regenerate import write_all
from wheelfarm.publish.write_report import WriteReport

BASE = "https://wheels.example.org"


@pytest.fixture
def state(engine: Engine, tmp_path: Path) -> State:
    state = State(engine, tmp_path)
    state.target()
    return state


def dirty(state: State, clock: SiteClock | None = None) -> WriteReport:
    return publish_dirty(
        state.engine, state.tree, upstream_simple_url=UPSTREAM, base_url=BASE, clock=clock
    )


def root_serials(www: Path) -> dict[str, int]:
    root = json.loads((www / "simple" / "index.json").read_bytes())
    return {p["name"]: p["_last-serial"] for p in root["projects"]}


def page_serial(www: Path, name: str) -> int:
    serial: int = json.loads((www / "simple" / name / "index.json").read_bytes())["meta"][
        "_last-serial"
    ]
    return serial


def html_root_serial(www: Path) -> int:
    match = re.search(rb"<!--SERIAL ([0-9]+)-->", (www / "simple" / "index.html").read_bytes())
    assert match is not None
    return int(match.group(1))


def home_figure(www: Path, key: str) -> int:
    home = (www / "index.html").read_text()
    match = re.search(rf'data-key="{key}"><dt>[^<]*</dt><dd>([0-9,]+)</dd>', home)
    assert match is not None, home
    return int(match.group(1).replace(",", ""))


def test_after_a_write_the_root_and_home_page_show_what_the_project_pages_show(
    state: State,
) -> None:
    state.release("foo", "1.0")
    state.release("bar", "1.0")
    write_all(state.engine, state.tree, upstream_simple_url=UPSTREAM, base_url=BASE)
    www = state.tree.root
    assert home_figure(www, "wheels") == 0
    state.yank("foo", "1.0", "broken")  # the listing is unchanged: only the serial moves
    state.import_wheel("foo-1.0-py3-none-any.whl")
    dirty(state)
    assert root_serials(www)["foo"] == page_serial(www, "foo")
    assert page_serial(www, "foo") > page_serial(www, "bar")
    assert html_root_serial(www) == page_serial(www, "foo")
    root = json.loads((www / "simple" / "index.json").read_bytes())
    assert root["meta"]["_last-serial"] == page_serial(www, "foo")
    assert home_figure(www, "wheels") == 1


def test_the_publisher_coalesces_root_writes_but_never_drops_one(state: State) -> None:
    state.release("foo", "1.0")
    write_all(state.engine, state.tree, upstream_simple_url=UPSTREAM, base_url=BASE)
    www = state.tree.root
    clock = SiteClock(refresh_seconds=3600.0, written_at=1e18)  # not due for a long time
    state.yank("foo", "1.0", "broken")
    dirty(state, clock)
    assert root_serials(www)["foo"] < page_serial(www, "foo")  # held back, and remembered
    assert clock.pending
    clock.written_at = 0.0  # now due: a round with nothing dirty still writes the root
    report = dirty(state, clock)
    assert report.site and not report.projects
    assert root_serials(www)["foo"] == page_serial(www, "foo")
    assert not clock.pending
    assert not dirty(state, clock).site  # nothing published since: nothing to write


def test_a_lone_change_is_published_before_the_root_catches_up(state: State) -> None:
    """With up's clock, the round that publishes a project leaves the roots (a pass over every
    project) to the next round, a second later: the change itself waits for nothing else."""
    state.release("foo", "1.0")
    write_all(state.engine, state.tree, upstream_simple_url=UPSTREAM, base_url=BASE)
    www = state.tree.root
    clock = SiteClock()  # due at once: nothing was written for a long time
    state.yank("foo", "1.0", "broken")
    first = dirty(state, clock)
    assert first.projects and not first.site
    assert root_serials(www)["foo"] < page_serial(www, "foo")
    second = dirty(state, clock)  # the next round, nothing dirty: the roots catch up
    assert second.site and not second.projects
    assert root_serials(www)["foo"] == page_serial(www, "foo")


def test_the_publisher_refreshes_the_root_within_seconds_by_default() -> None:
    clock = SiteClock()
    assert clock.refresh_seconds <= 5.0
    clock.pending = True
    assert clock.due(clock.written_at + clock.refresh_seconds)
