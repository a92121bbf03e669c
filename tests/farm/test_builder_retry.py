"""A release the index does not serve yet is retried by the builder, not failed."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.fake_upstream import FakeUpstream
from tests.fixtures.sdists import make_sdist
from wheelfarm.builder.loop import BuilderOptions, build_job
from wheelfarm.builder.sandbox import Outcome, cleanup
from wheelfarm.protocol import Job


def test_a_release_that_reaches_the_index_late_is_built_after_a_retry(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path / "sdists", "late-pkg", "1.0")
    waits: list[float] = []
    with FakeUpstream() as upstream:
        upstream.create("late-pkg")  # the changelog said so, but the file is not served yet

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            if len(waits) == 2:  # the index catches up during the second wait
                upstream.add_file("late-pkg", "1.0", sdist.name, content=sdist.read_bytes())

        job = Job(
            build_id=1, project="late-pkg", version="1.0", target="t", index_url=upstream.simple_url
        )
        options = BuilderOptions(
            workdir=tmp_path / "work",
            pip_options=("--no-build-isolation",),
            unavailable_retries=3,
            unavailable_wait=10.0,
        )
        result = build_job(job, options, sleep=sleep)
    assert result.outcome is Outcome.BUILT
    assert waits == [10.0, 20.0]  # backing off
    cleanup(result)


def test_a_release_that_never_arrives_is_reported_not_yet_available(tmp_path: Path) -> None:
    waits: list[float] = []
    with FakeUpstream() as upstream:
        upstream.create("never-pkg")
        job = Job(
            build_id=1,
            project="never-pkg",
            version="1.0",
            target="t",
            index_url=upstream.simple_url,
        )
        options = BuilderOptions(
            workdir=tmp_path / "work", unavailable_retries=2, unavailable_wait=1.0
        )
        result = build_job(job, options, sleep=waits.append)
    assert result.outcome is Outcome.NOT_YET_AVAILABLE
    assert waits == [1.0, 2.0]
    cleanup(result)
