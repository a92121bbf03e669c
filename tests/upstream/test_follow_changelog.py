"""Following the changelog of a fake upstream: every action and the upstream's bad habits."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select

from tests.fixtures.fake_upstream import FakeUpstream
from tests.upstream.helpers import files_of, script_early_remove, view
from wheelfarm.errors import MalformedResponse, UpstreamError
from wheelfarm.store.journal import position
from wheelfarm.store.schema import events
from wheelfarm.store.views import ProjectStatus
from wheelfarm.upstream.follow import Follower


def test_creates_releases_and_files_appear(upstream: FakeUpstream, follower: Follower) -> None:
    upstream.create("Foo")
    upstream.release("Foo", "1.0")
    upstream.add_file("Foo", "1.0", "foo-1.0.tar.gz")
    upstream.add_file("Foo", "1.0", "foo-1.0-py3-none-any.whl")
    upstream.release("Foo", "2.0b1")
    summary = follower.catch_up()
    assert (summary.events, summary.end_serial) == (5, upstream.last_serial)
    project = view(follower, "foo")
    assert project.status is ProjectStatus.LIVE
    assert project.display_name == "Foo"
    assert files_of(follower, "foo") == {
        "1.0": ["foo-1.0-py3-none-any.whl", "foo-1.0.tar.gz"],
        "2.0b1": [],
    }
    assert project.releases["2.0b1"].prerelease and not project.releases["1.0"].prerelease


def test_removing_one_file_of_several_keeps_the_others(
    upstream: FakeUpstream, follower: Follower
) -> None:
    upstream.create("foo")
    for filename in ("foo-1.0.tar.gz", "foo-1.0-py3-none-any.whl", "foo-1.0-py2-none-any.whl"):
        upstream.add_file("foo", "1.0", filename)
    upstream.remove_file("foo", "1.0", "foo-1.0-py2-none-any.whl")
    follower.catch_up()
    assert files_of(follower, "foo") == {"1.0": ["foo-1.0-py3-none-any.whl", "foo-1.0.tar.gz"]}


def test_a_file_removed_and_added_again_is_back(upstream: FakeUpstream, follower: Follower) -> None:
    upstream.create("foo")
    upstream.add_file("foo", "1.0", "foo-1.0.tar.gz")
    upstream.remove_file("foo", "1.0", "foo-1.0.tar.gz")
    follower.catch_up()
    assert files_of(follower, "foo") == {"1.0": []}
    upstream.add_file("foo", "1.0", "foo-1.0.tar.gz")
    follower.catch_up()
    assert files_of(follower, "foo") == {"1.0": ["foo-1.0.tar.gz"]}


def test_yank_unyank_and_the_reason_from_reconcile(
    upstream: FakeUpstream, follower: Follower
) -> None:
    upstream.create("foo")
    upstream.add_file("foo", "1.0", "foo-1.0.tar.gz")
    upstream.add_file("foo", "2.0", "foo-2.0.tar.gz")
    upstream.yank("foo", "1.0", reason="broken on Windows")
    upstream.yank("foo", "2.0")
    upstream.unyank("foo", "2.0")
    follower.catch_up()
    releases = view(follower, "foo").releases
    assert (releases["1.0"].yanked, releases["1.0"].yanked_reason) == (True, None)
    assert not releases["2.0"].yanked
    # The changelog carries no reason; the page read that reconciles the project does.
    results = follower.sync_projects(follower.dirty_projects())
    assert [r.error for r in results] == [None]
    releases = view(follower, "foo").releases
    assert (releases["1.0"].yanked, releases["1.0"].yanked_reason) == (True, "broken on Windows")
    assert follower.dirty_projects() == []


def test_reconcile_fills_in_hashes_sizes_and_requires_python(
    upstream: FakeUpstream, follower: Follower
) -> None:
    upstream.create("foo")
    upstream.add_file("foo", "1.0", "foo-1.0.tar.gz", requires_python=">=3.9", content=b"sdist")
    follower.catch_up()
    (file,) = view(follower, "foo").releases["1.0"].files
    assert file.sha256 is None
    follower.sync_projects(["foo"])
    (file,) = view(follower, "foo").releases["1.0"].files
    assert (file.sha256, file.size, file.requires_python) == (
        hashlib.sha256(b"sdist").hexdigest(),
        5,
        ">=3.9",
    )
    assert view(follower, "foo").releases["1.0"].requires_python == ">=3.9"


def test_project_quarantine_hides_and_clearing_restores(
    upstream: FakeUpstream, follower: Follower
) -> None:
    upstream.create("foo")
    upstream.add_file("foo", "1.0", "foo-1.0.tar.gz")
    upstream.quarantine_project("foo")
    follower.catch_up()
    assert view(follower, "foo").status is ProjectStatus.QUARANTINED
    upstream.clear_project_quarantine("foo")
    follower.catch_up()
    assert files_of(follower, "foo") == {"1.0": ["foo-1.0.tar.gz"]}


def test_release_quarantine_hides_the_release_until_cleared(
    upstream: FakeUpstream, follower: Follower
) -> None:
    upstream.create("foo")
    upstream.add_file("foo", "1.0", "foo-1.0.tar.gz")
    upstream.add_file("foo", "2.0", "foo-2.0.tar.gz")
    upstream.quarantine_release("foo", "2.0")
    follower.catch_up()
    assert list(view(follower, "foo").releases) == ["1.0"]
    upstream.clear_release_quarantine("foo", "2.0")
    follower.catch_up()
    assert list(view(follower, "foo").releases) == ["1.0", "2.0"]


@pytest.mark.parametrize("action", ["remove release", "remove"])
def test_removing_a_release_keeps_the_project(
    upstream: FakeUpstream, follower: Follower, action: str
) -> None:
    upstream.create("foo")
    upstream.add_file("foo", "1.0", "foo-1.0.tar.gz")
    upstream.add_file("foo", "2.0", "foo-2.0.tar.gz")
    upstream.add("foo", "2.0", action)  # the legacy bare "remove" with a version
    follower.catch_up()
    assert files_of(follower, "foo") == {"1.0": ["foo-1.0.tar.gz"]}


@pytest.mark.parametrize("action", ["remove project", "remove"])
def test_removing_a_project_deletes_it(
    upstream: FakeUpstream, follower: Follower, action: str
) -> None:
    upstream.create("foo")
    upstream.add_file("foo", "1.0", "foo-1.0.tar.gz")
    upstream.add("foo", None, action)  # the legacy bare "remove" without a version
    follower.catch_up()
    assert view(follower, "foo").status is ProjectStatus.DELETED


@pytest.mark.parametrize(
    "action",
    [
        "add Owner alice",
        "remove Owner alice",
        "remove Maintainer bob",
        "update summary",
        "docupdate",
    ],
)
def test_role_and_metadata_actions_change_nothing(
    upstream: FakeUpstream, follower: Follower, action: str
) -> None:
    upstream.create("foo")
    upstream.add_file("foo", "1.0", "foo-1.0.tar.gz")
    upstream.add("foo", "1.0" if action.startswith("update") else None, action)
    follower.catch_up()
    assert files_of(follower, "foo") == {"1.0": ["foo-1.0.tar.gz"]}


def test_deleted_project_re_registered_under_another_spelling(
    upstream: FakeUpstream, follower: Follower
) -> None:
    upstream.create("Package-Name")
    upstream.add_file("Package-Name", "1.0", "package_name-1.0.tar.gz")
    upstream.remove_project("Package-Name")
    upstream.create("package.name")
    upstream.add_file("package.name", "2.0", "package_name-2.0.tar.gz")
    follower.catch_up()
    project = view(follower, "package-name")
    assert (project.status, project.display_name) == (ProjectStatus.LIVE, "package.name")
    assert files_of(follower, "Package_Name") == {"2.0": ["package_name-2.0.tar.gz"]}


def test_release_re_released_after_removal_has_no_trace_of_the_old(
    upstream: FakeUpstream, follower: Follower
) -> None:
    upstream.create("foo")
    upstream.add_file("foo", "1.0", "foo-1.0.tar.gz")
    upstream.add_file("foo", "1.0", "foo-1.0-py3-none-any.whl")
    upstream.yank("foo", "1.0", reason="oops")
    upstream.remove_release("foo", "1.0")
    upstream.release("foo", "1.0")
    upstream.add_file("foo", "1.0", "foo-1.0-py2.py3-none-any.whl")
    follower.catch_up()
    release = view(follower, "foo").releases["1.0"]
    assert [f.filename for f in release.files] == ["foo-1.0-py2.py3-none-any.whl"]
    assert not release.yanked


def test_project_re_created_after_removal_has_no_old_files_in_a_new_release(
    upstream: FakeUpstream, follower: Follower
) -> None:
    upstream.create("foo")
    upstream.add_file("foo", "1.0", "foo-1.0.tar.gz")
    upstream.remove_project("foo")
    upstream.release("foo", "1.0")  # the same version again, under a re-created project
    follower.catch_up()
    assert files_of(follower, "foo") == {"1.0": []}


def test_early_history_release_before_its_project_create(
    upstream: FakeUpstream, follower: Follower
) -> None:
    # Serials increase, timestamps do not: the create is timestamped after its release.
    upstream.add("OldProject", "0.1", "new release", timestamp=1_000_000_100)
    upstream.add(
        "OldProject", "0.1", "add source file OldProject-0.1.tar.gz", timestamp=1_000_000_101
    )
    upstream.add("OldProject", None, "create", timestamp=1_000_000_500)
    follower.catch_up()
    project = view(follower, "oldproject")
    assert (project.status, project.display_name) == (ProjectStatus.LIVE, "OldProject")
    assert files_of(follower, "oldproject") == {"0.1": ["OldProject-0.1.tar.gz"]}


def test_early_history_remove_timestamped_before_the_create_it_follows(
    upstream: FakeUpstream, follower: Follower
) -> None:
    # The remove arrives later (higher serial) but is timestamped earlier: it removed only what
    # existed before it, which is nothing of this project.
    script_early_remove(upstream)
    follower.catch_up()
    assert files_of(follower, "early") == {"1.0": ["early-1.0.tar.gz"]}


@pytest.mark.parametrize("fault", ["ratelimit", "http500", "timeout", "malformed"])
def test_transient_faults_mid_stream_are_retried(
    upstream: FakeUpstream, follower: Follower, fault: str
) -> None:
    upstream.create("foo")
    for number in range(12):  # several answers of 4 rows each
        upstream.add_file("foo", "1.0", f"foo-1.0-{number}.tar.gz")
    first = follower.catch_up(until=5)
    assert first.end_serial >= 5
    upstream.fail_next(fault, 2)
    summary = follower.catch_up()
    assert summary.end_serial == upstream.last_serial
    assert len(view(follower, "foo").releases["1.0"].files) == 12


def test_persistent_failure_stops_with_an_error_and_keeps_what_was_applied(
    upstream: FakeUpstream, follower: Follower
) -> None:
    upstream.create("foo")
    for number in range(6):
        upstream.add_file("foo", "1.0", f"foo-1.0-{number}.tar.gz")
    follower.catch_up(until=4)
    with follower.engine.connect() as connection:
        before = position(connection)
    upstream.fail_next("http500", 4)  # every attempt of one call (3 retries)
    with pytest.raises(UpstreamError, match=r"502 .*gave up after 4 attempts"):
        follower.catch_up()
    with follower.engine.connect() as connection:
        assert position(connection) == before
    follower.catch_up()  # the upstream recovered (the remaining faults were used up)
    assert len(view(follower, "foo").releases["1.0"].files) == 6


def test_malformed_rows_are_journalled_with_their_problem_and_skipped(
    upstream: FakeUpstream, follower: Follower
) -> None:
    upstream.create("foo")
    upstream.add_file("foo", "1.0", "foo-1.0.tar.gz")
    upstream.add_file("foo", "1.0", "foo-1.0-py3-none-any.whl")
    upstream.fail_next("badrows", 1)
    summary = follower.catch_up(until=upstream.last_serial)  # the bad rows hit the row call
    assert summary.rejected >= 1
    assert summary.end_serial == upstream.last_serial
    assert files_of(follower, "foo") == {"1.0": ["foo-1.0-py3-none-any.whl", "foo-1.0.tar.gz"]}
    with follower.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(events)).scalar() == 3


def test_stale_page_is_refused_until_the_upstream_catches_up(
    upstream: FakeUpstream, follower: Follower
) -> None:
    upstream.create("foo")
    lagging = upstream.add_file("foo", "1.0", "foo-1.0.tar.gz")
    upstream.add_file("foo", "1.0", "foo-1.0-py3-none-any.whl")
    upstream.page_lag = lagging  # the CDN still serves the page from before the wheel
    follower.catch_up()
    (result,) = follower.sync_projects(["foo"])
    assert result.error is not None and "older than the event" in result.error
    assert follower.dirty_projects() == ["foo"]
    # The stale page changed nothing: the wheel from the changelog is still there.
    assert len(view(follower, "foo").releases["1.0"].files) == 2
    upstream.page_lag = None
    (result,) = follower.sync_projects(["foo"])
    assert result.error is None and follower.dirty_projects() == []


def test_malformed_last_serial_is_a_clear_error(upstream: FakeUpstream, follower: Follower) -> None:
    upstream.create("foo")
    upstream.fail_next("badrows", 1)  # answers changelog_last_serial with a string
    with pytest.raises(MalformedResponse, match="changelog_last_serial returned '1'"):
        follower.catch_up()
