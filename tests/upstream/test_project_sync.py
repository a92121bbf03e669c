"""Following named projects from their pages, and auditing what we hold against them."""

from __future__ import annotations

from tests.fixtures.fake_upstream import FakeUpstream
from tests.upstream.helpers import files_of, script_early_remove, view
from wheelfarm.store.views import ProjectStatus
from wheelfarm.upstream.diff import Difference, DifferenceKind
from wheelfarm.upstream.follow import Follower


def kinds(result_differences: list[Difference]) -> list[DifferenceKind]:
    return sorted({d.kind for d in result_differences}, key=lambda k: k.name)


def test_sync_reads_files_yanks_and_versions_without_files(
    upstream: FakeUpstream, follower: Follower
) -> None:
    upstream.create("Foo-Bar")
    upstream.set_summary("Foo-Bar", "A test project")
    upstream.add_file("Foo-Bar", "1.0", "foo_bar-1.0.tar.gz", requires_python=">=3.8")
    upstream.add_file("Foo-Bar", "2.0", "foo_bar-2.0.tar.gz")
    upstream.yank("Foo-Bar", "2.0", reason="regression")
    upstream.release("Foo-Bar", "3.0a1")
    (result,) = follower.sync_projects(["foo_bar"])
    assert result.error is None and result.applied
    project = view(follower, "foo-bar")
    assert (project.display_name, project.summary) == ("Foo-Bar", "A test project")
    assert files_of(follower, "foo-bar") == {
        "1.0": ["foo_bar-1.0.tar.gz"],
        "2.0": ["foo_bar-2.0.tar.gz"],
        "3.0a1": [],
    }
    assert project.releases["2.0"].yanked_reason == "regression"
    assert project.releases["3.0a1"].prerelease
    assert project.releases["1.0"].requires_python == ">=3.8"
    # A second sync finds nothing to change.
    (again,) = follower.sync_projects(["Foo.Bar"])
    assert again.differences == []


def test_sync_applies_removals_unyanks_and_deletion(
    upstream: FakeUpstream, follower: Follower
) -> None:
    upstream.create("foo")
    upstream.add_file("foo", "1.0", "foo-1.0.tar.gz")
    upstream.add_file("foo", "1.0", "foo-1.0-py3-none-any.whl")
    upstream.add_file("foo", "2.0", "foo-2.0.tar.gz")
    upstream.yank("foo", "1.0")
    follower.sync_projects(["foo"])
    upstream.remove_file("foo", "1.0", "foo-1.0-py3-none-any.whl")
    upstream.unyank("foo", "1.0")
    upstream.remove_release("foo", "2.0")
    (result,) = follower.sync_projects(["foo"])
    assert kinds(result.differences) == [
        DifferenceKind.FILE_EXTRA,
        DifferenceKind.RELEASE_EXTRA,
        DifferenceKind.YANK,
    ]
    assert files_of(follower, "foo") == {"1.0": ["foo-1.0.tar.gz"]}
    assert not view(follower, "foo").releases["1.0"].yanked
    upstream.remove_project("foo")
    (gone,) = follower.sync_projects(["foo"])
    assert kinds(gone.differences) == [DifferenceKind.PROJECT_EXTRA]
    assert view(follower, "foo").status is ProjectStatus.DELETED


def test_audit_without_fix_reports_and_changes_nothing(
    upstream: FakeUpstream, follower: Follower
) -> None:
    upstream.create("foo")
    upstream.add_file("foo", "1.0", "foo-1.0.tar.gz")
    follower.sync_projects(["foo"])
    upstream.add_file("foo", "1.1", "foo-1.1.tar.gz")
    (audit,) = follower.sync_projects(["foo"], fix=False)
    assert kinds(audit.differences) == [DifferenceKind.FILE_MISSING, DifferenceKind.RELEASE_MISSING]
    assert "foo 1.1 foo-1.1.tar.gz: file missing here" in [str(d) for d in audit.differences]
    assert list(view(follower, "foo").releases) == ["1.0"]


def test_unknown_project_is_reported_and_not_created(
    upstream: FakeUpstream, follower: Follower
) -> None:
    (result,) = follower.sync_projects(["does-not-exist"])
    assert (result.found, result.differences, result.applied) == (False, [], False)
    assert view(follower, "does-not-exist").status is ProjectStatus.UNKNOWN


def test_reconcile_mends_state_the_events_got_wrong(
    upstream: FakeUpstream, follower: Follower
) -> None:
    # The early-history remove timestamped before its create leaves the project alive by the
    # events' meaning; the upstream's page (serial order) says it is gone: reconcile agrees.
    script_early_remove(upstream)
    follower.catch_up()
    assert view(follower, "early").status is ProjectStatus.LIVE
    follower.sync_projects(follower.dirty_projects())
    assert view(follower, "early").status is ProjectStatus.DELETED


def test_page_faults_are_retried(upstream: FakeUpstream, follower: Follower) -> None:
    upstream.create("foo")
    upstream.add_file("foo", "1.0", "foo-1.0.tar.gz")
    upstream.fail_next("ratelimit", 1, where="pages")
    upstream.fail_next("http500", 1, where="pages")
    (result,) = follower.sync_projects(["foo"])
    assert result.error is None
    assert files_of(follower, "foo") == {"1.0": ["foo-1.0.tar.gz"]}


def test_a_malformed_page_changes_nothing_and_is_reported(
    upstream: FakeUpstream, follower: Follower
) -> None:
    upstream.create("foo")
    upstream.add_file("foo", "1.0", "foo-1.0.tar.gz")
    follower.sync_projects(["foo"])
    upstream.remove_file("foo", "1.0", "foo-1.0.tar.gz")
    upstream.fail_next("malformed", 10, where="pages")
    (result,) = follower.sync_projects(["foo"])
    assert result.error is not None and "foo" in result.error
    assert files_of(follower, "foo") == {"1.0": ["foo-1.0.tar.gz"]}


def test_a_project_deleted_upstream_is_reconciled_once(
    upstream: FakeUpstream, follower: Follower
) -> None:
    upstream.create("foo")
    upstream.add_file("foo", "1.0", "foo-1.0.tar.gz")
    upstream.remove_project("foo")
    follower.catch_up()
    assert follower.dirty_projects() == ["foo"]
    follower.sync_projects(follower.dirty_projects())  # the page answers 404
    assert follower.dirty_projects() == []
    assert view(follower, "foo").status is ProjectStatus.DELETED


def test_a_yanked_release_without_files_stays_yanked(
    upstream: FakeUpstream, follower: Follower
) -> None:
    upstream.create("foo")
    upstream.release("foo", "1.0")
    upstream.yank("foo", "1.0", reason="never finished")
    follower.catch_up()
    (result,) = follower.sync_projects(["foo"])  # the page cannot show a yank without files
    assert result.differences == []
    assert view(follower, "foo").releases["1.0"].yanked


def test_sync_follows_the_status_marker_as_the_page_changes_it(
    upstream: FakeUpstream, follower: Follower
) -> None:
    upstream.create("foo")
    upstream.add_file("foo", "1.0", "foo-1.0.tar.gz")
    follower.sync_projects(["foo"])
    assert (view(follower, "foo").status_marker, view(follower, "foo").status_reason) == (
        "active",
        None,
    )
    steps = [
        ("archived", None),
        ("deprecated", "use bar"),
        ("active", None),  # lifted
    ]
    for marker, reason in steps:
        upstream.set_status("foo", marker, reason)
        (result,) = follower.sync_projects(["foo"])
        assert kinds(result.differences) == [DifferenceKind.STATUS]
        project = view(follower, "foo")
        assert (project.status_marker, project.status_reason) == (marker, reason)
        assert files_of(follower, "foo") == {"1.0": ["foo-1.0.tar.gz"]}  # files stay offered
    (again,) = follower.sync_projects(["foo"])
    assert again.differences == []


def test_a_page_that_says_quarantined_hides_the_project_and_lifting_it_restores_it(
    upstream: FakeUpstream, follower: Follower
) -> None:
    upstream.create("foo")
    upstream.add_file("foo", "1.0", "foo-1.0.tar.gz")
    follower.sync_projects(["foo"])
    upstream.set_status("foo", "quarantined", "malware")  # no event: only the page says so
    (result,) = follower.sync_projects(["foo"])
    assert kinds(result.differences) == [DifferenceKind.QUARANTINED]
    project = view(follower, "foo")
    assert (project.status, project.status_marker, project.status_reason) == (
        ProjectStatus.QUARANTINED,
        "quarantined",
        "malware",
    )
    (again,) = follower.sync_projects(["foo"])
    assert again.differences == []  # its page lists no files: that removes none of ours
    upstream.set_status("foo", "active")
    (lifted,) = follower.sync_projects(["foo"])
    assert kinds(lifted.differences) == [  # a quarantined project shows us nothing
        DifferenceKind.FILE_MISSING,
        DifferenceKind.PROJECT_MISSING,
        DifferenceKind.RELEASE_MISSING,
    ]
    assert view(follower, "foo").status is ProjectStatus.LIVE
    assert files_of(follower, "foo") == {"1.0": ["foo-1.0.tar.gz"]}


def test_a_project_first_seen_quarantined_is_held_quarantined(
    upstream: FakeUpstream, follower: Follower
) -> None:
    upstream.create("foo")
    upstream.add_file("foo", "1.0", "foo-1.0.tar.gz")
    upstream.quarantine_project("foo")
    (result,) = follower.sync_projects(["foo"])
    assert kinds(result.differences) == [DifferenceKind.QUARANTINED]
    assert view(follower, "foo").status is ProjectStatus.QUARANTINED
