"""Loading the published values from the store: visibility, yanks, builds, serials."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.publish.states import TARGET, UPSTREAM, State
from wheelfarm.farm.jobs import JobState
from wheelfarm.publish.loader import load_project, load_projects, load_publications, load_site
from wheelfarm.publish.values import BuildCell
from wheelfarm.store.marks import WrittenMark, dirty_projects, mark_changed, mark_written
from wheelfarm.store.schema import skips


@pytest.fixture
def state(engine: Engine, tmp_path: Path) -> State:
    return State(engine, tmp_path)


def load(state: State, name: str):
    with state.engine.connect() as connection:
        return load_project(connection, name, upstream_simple_url=UPSTREAM)


def test_a_project_with_releases_builds_and_wheels(state: State) -> None:
    state.target()
    state.release("Demo.Pkg", "1.0")
    state.details("demo-pkg", "1.0", "Demo.Pkg-1.0.tar.gz", upload_time="2024-01-02T03:04:05Z")
    state.event("Demo.Pkg", "1.0", "add py3 file demo_pkg-1.0-py3-none-any.whl")
    state.details(
        "demo-pkg",
        "1.0",
        "demo_pkg-1.0-py3-none-any.whl",
        upload_time="2024-01-01T00:00:00Z",
        requires_python=">=3.8",
    )
    state.release("Demo.Pkg", "2.0rc1")
    state.release("Demo.Pkg", "0.9", "demo_pkg-0.9-cp311-cp311-win_amd64.whl")  # binary only
    state.schedule("Demo.Pkg")
    wheel = state.import_wheel("demo_pkg-2.0rc1-cp311-cp311-linux_armv7l.whl")
    state.summary("demo-pkg", "A demo")

    project = load(state, "demo-pkg")
    assert project is not None
    assert (project.name, project.display_name, project.summary) == (
        "demo-pkg",
        "Demo.Pkg",
        "A demo",
    )
    assert project.upstream_url == "https://index.example.org/simple/demo-pkg/"
    assert project.targets == (TARGET.name,)
    assert [r.version for r in project.releases] == ["2.0rc1", "1.0", "0.9"]
    new, old, binary = project.releases
    assert new.prerelease and not old.prerelease
    assert old.released == "2024-01-01T00:00:00Z"  # the earliest upstream upload
    assert old.requires_python == ">=3.8"
    assert (old.binary_only, binary.binary_only) == (False, True)
    assert binary.builds == {}  # nothing to build from, so no job
    (file,) = new.files
    assert file.url == f"/files/demo-pkg/{file.filename}"
    assert file.sha256 == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert file.size == wheel.stat().st_size
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read("demo_pkg-2.0rc1.dist-info/METADATA")
    assert file.metadata_sha256 == hashlib.sha256(metadata).hexdigest()
    assert file.tags == ("cp311-cp311-linux_armv7l",)
    assert file.target == TARGET.name
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", file.uploaded)
    assert new.builds == {
        TARGET.name: BuildCell(TARGET.name, JobState.BUILT, None, file.build_id, has_log=False),
    }
    assert project.serial > 0


def test_yanks_come_from_the_upstream_with_or_without_a_reason(state: State) -> None:
    state.release("foo", "1.0")
    state.release("foo", "2.0")
    state.release("foo", "3.0")
    state.yank("foo", "1.0", "broken <b>build</b>")
    state.yank("foo", "2.0", None)
    project = load(state, "foo")
    assert project is not None
    by_version = {r.version: r for r in project.releases}
    assert (by_version["1.0"].yanked, by_version["1.0"].yanked_reason) == (
        True,
        "broken <b>build</b>",
    )
    assert (by_version["2.0"].yanked, by_version["2.0"].yanked_reason) == (True, None)
    assert (by_version["3.0"].yanked, by_version["3.0"].yanked_reason) == (False, None)


def test_deleted_quarantined_and_unknown_projects_are_not_published(state: State) -> None:
    state.release("gone", "1.0")
    state.event("gone", None, "remove")
    state.release("held", "1.0")
    state.event("held", None, "project quarantined")
    assert load(state, "gone") is None
    assert load(state, "held") is None
    assert load(state, "never-heard-of") is None
    state.release("live", "1.0")
    with state.engine.connect() as connection:
        found = load_projects(
            connection, ["gone", "held", "live", "nope"], upstream_simple_url=UPSTREAM
        )
    assert list(found) == ["live"]


def test_a_deleted_release_takes_its_wheels_off_the_pages(state: State) -> None:
    state.target()
    state.release("foo", "1.0")
    state.release("foo", "2.0")
    state.import_wheel("foo-1.0-py3-none-any.whl")
    state.import_wheel("foo-2.0-py3-none-any.whl")
    state.event("foo", "1.0", "remove release")
    with state.engine.connect() as connection:
        (publication,) = load_publications(
            connection, ["foo"], upstream_simple_url=UPSTREAM
        ).values()
    assert publication.project is not None
    assert [r.version for r in publication.project.releases] == ["2.0"]
    assert [f.filename for f in publication.project.files] == ["foo-2.0-py3-none-any.whl"]
    assert publication.withdrawn == ("foo-1.0-py3-none-any.whl",)


def test_skips_of_a_release_and_of_a_whole_project(state: State) -> None:
    state.release("foo", "1.0")
    state.release("foo", "2.0")
    with state.engine.begin() as connection:
        connection.execute(skips.insert().values(project="foo", version="", reason="too big"))
        connection.execute(skips.insert().values(project="foo", version="1.0", reason="broken"))
    project = load(state, "foo")
    assert project is not None
    assert {r.version: r.skip for r in project.releases} == {"2.0": "too big", "1.0": "broken"}


def test_a_failed_build_shows_its_reason_and_latest_attempt(state: State) -> None:
    state.target()
    state.release("foo", "1.0")
    state.schedule("foo")
    build_id = state.build(None, log="compiling\nerror: no compiler\n", status="failed")
    project = load(state, "foo")
    assert project is not None
    (release,) = project.releases
    assert release.builds[TARGET.name].status is JobState.FAILED
    assert release.builds[TARGET.name].build_id == build_id
    with state.engine.connect() as connection:
        (publication,) = load_publications(
            connection, ["foo"], upstream_simple_url=UPSTREAM
        ).values()
    assert publication.logs == (build_id,)
    assert release.builds[TARGET.name].has_log


def test_only_builds_with_a_stored_log_are_said_to_have_one(state: State) -> None:
    state.target()
    state.release("foo", "1.0")
    state.import_wheel("foo-1.0-py3-none-any.whl")  # imported: its build row has no log
    project = load(state, "foo")
    assert project is not None
    (wheel,) = project.releases[0].files
    assert not wheel.has_log
    assert all(not cell.has_log for cell in project.releases[0].builds.values())


def test_the_site_lists_live_projects_with_serials(state: State) -> None:
    state.release("Zeta", "1.0")
    state.release("alpha", "1.0")
    state.release("gone", "1.0")
    state.event("gone", None, "remove")
    with state.engine.connect() as connection:
        site = load_site(connection)
    assert [(p.name, p.display_name) for p in site.projects] == [
        ("alpha", "alpha"),
        ("zeta", "Zeta"),
    ]
    assert site.serial > max(p.serial for p in site.projects) > 0  # the removal came last
    assert site.counts["projects"] == 2 and site.counts["releases"] == 2


def test_serials_grow_and_a_mark_is_cleared_only_if_it_did_not_move(engine: Engine) -> None:
    with engine.begin() as connection:
        mark_changed(connection, ["a", "b"])
        first = dirty_projects(connection)
        mark_changed(connection, ["a"])
        second = dirty_projects(connection)
    assert first["a"] == first["b"] and second["a"] > first["a"] and second["b"] == first["b"]
    with engine.begin() as connection:
        # A writer read both at the first serials; "a" changed again while it was written.
        marks = [WrittenMark("a", first["a"], "a\n"), WrittenMark("b", first["b"], "b\n")]
        mark_written(connection, marks)
        assert dirty_projects(connection) == {"a": second["a"]}


def test_system_dependencies_are_shown_net_of_the_targets_distro(state: State) -> None:
    from wheelfarm.farm.dependencies import load_distro, record_dependencies, set_target_distro
    from wheelfarm.protocol import WheelDependencies
    from wheelfarm.publish.site_pages import render_project_json, render_project_page

    state.target()
    state.release("demo-yaml", "1.0")
    state.schedule("demo-yaml")
    state.import_wheel("demo_yaml-1.0-cp311-cp311-linux_armv7l.whl")
    found = WheelDependencies(
        apt=["libc6", "libyaml-0-2"], unresolved=["libgone.so.7"], bundled=["libz.so.1"]
    )
    with state.engine.begin() as connection:
        record_dependencies(connection, "demo_yaml-1.0-cp311-cp311-linux_armv7l.whl", found)
    (wheel,) = load(state, "demo-yaml").files
    assert wheel.apt_dependencies == ("libc6", "libyaml-0-2")  # no distro: nothing subtracted
    with state.engine.begin() as connection:
        load_distro(connection, "lite", ["libc6", "bash"], source="test")
        assert set_target_distro(connection, TARGET.name, "lite")
        assert "demo-yaml" in dirty_projects(connection)  # its install line changes
    project = load(state, "demo-yaml")
    (wheel,) = project.files
    assert (wheel.apt_dependencies, wheel.unresolved_libraries) == (
        ("libyaml-0-2",),
        ("libgone.so.7",),
    )
    assert "sudo apt install libyaml-0-2" in render_project_page(project).decode()
    dependencies = json.loads(render_project_json(project))["releases"]["1.0"]["files"][0][
        "dependencies"
    ]
    assert (dependencies["apt"], dependencies["unresolved"]) == (["libyaml-0-2"], ["libgone.so.7"])


def test_reading_a_run_of_names_by_range_gives_what_reading_them_by_name_gives(
    state: State,
) -> None:
    """write --all reads chunks by a range of names (``dense``); the incremental writer reads
    them by name. Every kind of name must come out the same both ways."""
    state.target()
    state.release("alpha", "1.0")
    state.details("alpha", "1.0", "alpha-1.0.tar.gz", upload_time="2024-01-02T00:00:00Z")
    state.release("alpha", "2.0")
    state.schedule("alpha")
    state.import_wheel("alpha-1.0-py3-none-any.whl")
    state.build(None, log="failed here\n", status="failed")
    state.release("beta", "1.0", "beta-1.0-py3-none-any.whl")  # binary only: no job
    state.release("gone", "1.0")
    state.import_wheel("gone-1.0-py3-none-any.whl")
    state.event("gone", None, "remove")  # its wheel is to be withdrawn
    state.release("held", "1.0")
    state.event("held", None, "project quarantined")
    state.yank("alpha", "2.0", "broken")
    with state.engine.begin() as connection:
        mark_changed(connection, ["marked-only"])  # a serial, but no project
    names = ["alpha", "beta", "gone", "held", "marked-only", "never-seen", "zzz-unknown"]
    with state.engine.connect() as connection:
        by_name = load_publications(connection, names, upstream_simple_url=UPSTREAM)
        by_range = load_publications(connection, names, upstream_simple_url=UPSTREAM, dense=True)
    assert by_range == by_name
    assert sorted(by_range) == names
    assert [n for n, p in by_range.items() if p.project is not None] == ["alpha", "beta"]
    assert by_range["gone"].withdrawn == ("gone-1.0-py3-none-any.whl",)
    assert by_range["marked-only"].serial > 0 and by_range["never-seen"].serial == 0
    alpha = by_range["alpha"].project
    assert alpha is not None
    assert {r.version: r.yanked_reason for r in alpha.releases} == {"2.0": "broken", "1.0": None}
    assert {r.version: r.builds[TARGET.name].status for r in alpha.releases} == {
        "2.0": JobState.FAILED,
        "1.0": JobState.BUILT,
    }
