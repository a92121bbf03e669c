"""The services behind the builder API, called directly, on both engines."""

from __future__ import annotations

import errno
import zlib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select

from tests.farm.test_queue import CP311, NOW, History
from wheelfarm.farm.builds import (
    LOG_CAP,
    claim_build,
    compress_log,
    finish_build,
    own_build,
    register_builder,
    renew_lease,
)
from wheelfarm.farm.intake import IntakeLimits
from wheelfarm.farm.jobs import expire_leases, schedule_project
from wheelfarm.farm.refusals import (
    AlreadyPublished,
    BuildOver,
    HelloFirst,
    MasterDiskFull,
    NotYourBuild,
    TargetNotConfigured,
    TooManyWheels,
    WheelTooLarge,
)
from wheelfarm.farm.registry import add_builder, add_target, set_command
from wheelfarm.farm.uploads import Upload, check_upload, staged_upload, sweep_stale_uploads
from wheelfarm.names import canonical
from wheelfarm.protocol import BuildReport, Hello
from wheelfarm.store.schema import build_files, builders, builds, jobs

LEASE = 60.0


@pytest.fixture
def queued(engine: Engine) -> Engine:
    """A store with one pending job (foo 1.0 for CP311) and builders b1 (said hello) and b2."""
    History(engine)("foo", "1.0", "add source file foo-1.0.tar.gz")
    with engine.begin() as connection:
        add_target(connection, CP311)
        for name in ("b1", "b2"):
            add_builder(connection, name, now=NOW)
        register_builder(connection, "b1", Hello(target=CP311.name, python="3.11", os="x"))
        schedule_project(connection, canonical("foo"), [CP311], now=NOW)
    return engine


def _claim(engine: Engine, builder: str = "b1") -> int:
    with engine.begin() as connection:
        build = claim_build(connection, builder, now=NOW, lease_seconds=LEASE).build
    assert build is not None
    return build.build_id


def test_hello_records_the_builder_and_spends_a_pending_stop(queued: Engine) -> None:
    with queued.begin() as connection:
        set_command(connection, "b2", "stop")
        register_builder(connection, "b2", Hello(target=CP311.name, python="3.11", os="y"))
        row = connection.execute(select(builders).where(builders.c.name == "b2")).one()
    assert (row.target, row.os, row.command) == (CP311.name, "y", None)


def test_hello_for_a_target_the_master_does_not_build_for_is_refused(queued: Engine) -> None:
    with queued.begin() as connection, pytest.raises(TargetNotConfigured, match="targets add"):
        register_builder(
            connection, "b2", Hello(target="cp39-cp39-linux_armv7l", python="3", os="x")
        )


def test_claim_opens_a_build_of_the_builders_target_under_a_lease(queued: Engine) -> None:
    with queued.begin() as connection:
        claimed = claim_build(connection, "b1", now=NOW, lease_seconds=LEASE)
        job = connection.execute(select(jobs)).one()
        build = connection.execute(select(builds)).one()
    assert claimed.build is not None and claimed.command == "continue"
    assert (claimed.build.project, claimed.build.version, claimed.build.target) == (
        "foo",
        "1.0",
        CP311.name,
    )
    assert (job.state, job.builder, job.lease_expires) == ("building", "b1", NOW + LEASE)
    assert (build.id, build.status, build.builder) == (claimed.build.build_id, "building", "b1")


def test_claim_with_nothing_queued_gives_no_build(queued: Engine) -> None:
    _claim(queued)
    with queued.begin() as connection:
        assert claim_build(connection, "b1", now=NOW, lease_seconds=LEASE).build is None


def test_a_claim_with_nothing_queued_writes_nothing(queued: Engine) -> None:
    _claim(queued)
    written: list[str] = []

    def note(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith("SELECT"):
            written.append(statement)

    event.listen(queued, "before_cursor_execute", note)
    try:
        with queued.begin() as connection:
            assert claim_build(connection, "b1", now=NOW + 1, lease_seconds=LEASE).build is None
    finally:
        event.remove(queued, "before_cursor_execute", note)
    assert written == []


def test_claim_before_hello_is_refused(queued: Engine) -> None:
    with queued.begin() as connection, pytest.raises(HelloFirst):
        claim_build(connection, "b2", now=NOW, lease_seconds=LEASE)


@pytest.mark.parametrize("command", ["pause", "stop"])
def test_a_paused_or_stopped_builder_gets_no_build_and_is_told_why(
    queued: Engine, command: str
) -> None:
    with queued.begin() as connection:
        set_command(connection, "b1", command)
        claimed = claim_build(connection, "b1", now=NOW, lease_seconds=LEASE)
        state = connection.execute(select(jobs.c.state)).scalar_one()
    assert (claimed.build, claimed.command, state) == (None, command, "pending")


def test_heartbeat_renews_the_lease_and_passes_the_operators_command(queued: Engine) -> None:
    build_id = _claim(queued)
    with queued.begin() as connection:
        set_command(connection, "b1", "skip")
        command = renew_lease(connection, build_id, "b1", now=NOW + 50, lease_seconds=LEASE)
        lease = connection.execute(select(jobs.c.lease_expires)).scalar_one()
    assert (command, lease) == ("skip", NOW + 50 + LEASE)


def test_another_builders_build_or_an_unknown_one_is_not_yours(queued: Engine) -> None:
    build_id = _claim(queued)
    with queued.begin() as connection:
        assert own_build(connection, build_id, "b1").project == "foo"
        with pytest.raises(NotYourBuild, match=f"build {build_id} is not yours"):
            own_build(connection, build_id, "b2")
        with pytest.raises(NotYourBuild):
            own_build(connection, build_id + 1000, "b1")


def test_a_finished_build_is_over_for_its_builder(queued: Engine) -> None:
    build_id = _claim(queued)
    report = BuildReport(status="failed", reason="boom", duration=1.0)
    with queued.begin() as connection:
        assert finish_build(connection, build_id, "b1", report, now=NOW) == "failed"
        with pytest.raises(BuildOver, match="already over"):
            renew_lease(connection, build_id, "b1", now=NOW, lease_seconds=LEASE)


def test_a_built_report_with_no_wheel_is_recorded_failed(queued: Engine) -> None:
    build_id = _claim(queued)
    report = BuildReport(status="built", duration=2.0, log="all good")
    with queued.begin() as connection:
        outcome = finish_build(connection, build_id, "b1", report, now=NOW)
        job = connection.execute(select(jobs)).one()
        build = connection.execute(select(builds)).one()
    assert outcome == "failed"
    assert (job.state, job.builder) == ("failed", None)
    assert job.reason == build.reason == "the builder reported success but uploaded no wheel"
    assert build.category == "unknown"  # the log of a good build says nothing of a failure
    text = zlib.decompress(build.log)
    assert text.startswith(b"all good\n=== wheelfarm master ===\nrecorded: failed\n")
    assert build.log_bytes == len(text)


def test_a_failed_build_is_triaged_at_intake_and_its_job_shows_the_telling_line(
    queued: Engine,
) -> None:
    build_id = _claim(queued)
    log = (
        "=== build output ===\n"
        "x.c:2:10: fatal error: ffi.h: No such file or directory\n"
        "ERROR: Failed to build one or more wheels\n"
        "=== end of build ===\noutcome: failed\n"
    )
    report = BuildReport(
        status="failed", reason="ERROR: Failed to build one or more wheels", duration=1, log=log
    )
    with queued.begin() as connection:
        finish_build(connection, build_id, "b1", report, now=NOW)
        job = connection.execute(select(jobs)).one()
        build = connection.execute(select(builds)).one()
    telling = "x.c:2:10: fatal error: ffi.h: No such file or directory"
    assert (build.category, build.reason, job.reason) == ("missing-dependency", telling, telling)
    assert zlib.decompress(build.log).endswith(
        f"category: missing-dependency\ntelling line: {telling}\n".encode()
    )


def test_a_build_whose_lease_expired_gets_a_log_saying_it_died(queued: Engine) -> None:
    build_id = _claim(queued)
    with queued.begin() as connection:
        assert expire_leases(connection, NOW + LEASE + 1) == 1
        build = connection.execute(select(builds).where(builds.c.id == build_id)).one()
    text = zlib.decompress(build.log).decode()
    assert build.category == "build-died"
    assert "outcome: died\nreason: lease expired: the builder went silent\n" in text
    assert text.startswith("=== wheelfarm build ===\nproject: foo\n")


def test_a_release_not_yet_on_the_index_goes_back_to_the_queue_deferred(queued: Engine) -> None:
    build_id = _claim(queued)
    report = BuildReport(status="not-yet-available", reason="no such version", duration=1.0)
    with queued.begin() as connection:
        assert finish_build(connection, build_id, "b1", report, now=NOW) == "not-yet-available"
        job = connection.execute(select(jobs)).one()
        build = connection.execute(select(builds)).one()
    assert (job.state, job.reason, job.urgent, build.status) == ("pending", None, False, "deferred")


def test_a_cancelled_build_under_skip_fails_its_job_as_skipped(queued: Engine) -> None:
    build_id = _claim(queued)
    with queued.begin() as connection:
        set_command(connection, "b1", "skip")
        report = BuildReport(status="cancelled", duration=1.0)
        finish_build(connection, build_id, "b1", report, now=NOW)
        job = connection.execute(select(jobs)).one()
        command = connection.execute(select(builders.c.command).where(builders.c.name == "b1"))
    assert (job.state, job.reason) == ("failed", "skipped by an operator on builder b1")
    assert command.scalar_one() is None


def test_an_upload_too_large_or_already_published_is_refused(queued: Engine) -> None:
    build_id = _claim(queued)
    limits = IntakeLimits()
    name = "foo-1.0-py3-none-any.whl"
    with queued.begin() as connection:
        build = own_build(connection, build_id, "b1")
        with pytest.raises(WheelTooLarge):
            check_upload(connection, build, Upload(name, "", limits.max_wheel_bytes + 1), limits)
        check_upload(connection, build, Upload(name, "", 100), limits)
        connection.execute(
            build_files.insert().values(
                filename=name,
                project="foo",
                version="1.0",
                target=CP311.name,
                build_id=build_id,
                sha256="ab" * 32,
                size=100,
                tags="py3-none-any",
            )
        )
        with pytest.raises(AlreadyPublished, match="is already published"):
            check_upload(connection, build, Upload(name, "", 100), limits)


def test_a_full_disk_while_staging_is_refused_as_such_and_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(MasterDiskFull), staged_upload(tmp_path / "staging") as staged:
        staged.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert list((tmp_path / "staging").iterdir()) == []


def test_stale_staging_files_are_swept_and_fresh_ones_kept(tmp_path: Path) -> None:
    with staged_upload(tmp_path / "staging") as staged:
        staged.write_bytes(b"x")
        (tmp_path / "staging" / "old.upload").write_bytes(b"x")
        old = (tmp_path / "staging" / "old.upload").stat().st_mtime
        assert sweep_stale_uploads(tmp_path / "staging", old + 3601) == 2
    assert sweep_stale_uploads(tmp_path / "absent", NOW) == 0


def test_a_long_log_keeps_its_tail_within_the_cap() -> None:
    log = compress_log("x" * (LOG_CAP + 10) + "END")
    text = zlib.decompress(log.data)
    assert text.startswith(b"[log truncated: 13 bytes dropped]\n") and text.endswith(b"END")
    assert log.size == len(text)


def test_a_long_framed_log_keeps_its_header_then_its_tail() -> None:
    header = "=== wheelfarm build ===\nproject: foo\n=== build output ===\n"
    log = compress_log(header + "x" * LOG_CAP + "END")
    text = zlib.decompress(log.data)
    dropped = len(header) + 3  # the header is kept, so as much more of the output goes
    assert text.startswith(f"{header}[log truncated: {dropped} bytes dropped]\n".encode())
    assert text.endswith(b"xEND") and log.size == len(text)


def _record_wheels(engine: Engine, build_id: int, count: int, wheels: Path | None = None) -> None:
    """``count`` wheels of foo 1.0 recorded for the build (and written under ``wheels``)."""
    with engine.begin() as connection:
        for number in range(count):
            name = f"foo-1.0-{number + 1}-py3-none-any.whl"
            connection.execute(
                build_files.insert().values(
                    filename=name,
                    project="foo",
                    version="1.0",
                    target=CP311.name,
                    build_id=build_id,
                    sha256="ab" * 32,
                    size=100,
                    tags="py3-none-any",
                )
            )
            if wheels is not None:
                (wheels / "foo").mkdir(parents=True, exist_ok=True)
                (wheels / "foo" / name).write_bytes(b"wheel")


def test_a_build_may_upload_at_most_the_limit_of_wheels(queued: Engine) -> None:
    build_id = _claim(queued)
    _record_wheels(queued, build_id, 3)
    upload = Upload("foo-1.0-9-py3-none-any.whl", "", 100)
    with queued.begin() as connection:
        build = own_build(connection, build_id, "b1")
        check_upload(connection, build, upload, IntakeLimits(), max_wheels=4)
        with pytest.raises(TooManyWheels, match="already uploaded 3 wheels"):
            check_upload(connection, build, upload, IntakeLimits(), max_wheels=3)


@pytest.mark.parametrize(
    ("status", "published"),
    [("built", 2), ("failed", 0), ("cancelled", 0), ("not-yet-available", 0)],
)
def test_only_a_build_that_ends_built_keeps_its_wheels_published(
    queued: Engine, tmp_path: Path, status: str, published: int
) -> None:
    build_id = _claim(queued)
    _record_wheels(queued, build_id, 2, tmp_path)
    report = BuildReport.model_validate({"status": status, "duration": 1.0})
    with queued.begin() as connection:
        finish_build(connection, build_id, "b1", report, now=NOW, wheel_dir=tmp_path)
        rows = connection.execute(select(build_files.c.filename)).scalars().all()
    assert len(rows) == published
    assert len(list((tmp_path / "foo").iterdir())) == published


def test_the_wheels_of_an_expired_lease_are_withdrawn(queued: Engine, tmp_path: Path) -> None:
    build_id = _claim(queued)
    _record_wheels(queued, build_id, 22, tmp_path)
    with queued.begin() as connection:
        claim_build(connection, "b1", now=NOW + LEASE + 1, lease_seconds=LEASE, wheel_dir=tmp_path)
        status = connection.execute(select(builds.c.status).where(builds.c.id == build_id))
        assert status.scalar_one() == "failed"
        assert connection.execute(select(build_files)).all() == []
    assert list((tmp_path / "foo").iterdir()) == []
