"""The master's commands to a builder (skip, pause, resume, stop) and a builder shutting down."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from tests.farm.conftest import Farm
from tests.fixtures.sdists import make_sdist
from wheelfarm.builder.loop import BuilderOptions, run_builder
from wheelfarm.farm.registry import command_of, set_command
from wheelfarm.store.schema import builds, jobs

OPTIONS = ("--no-build-isolation",)


def wait_for(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


def job_state(farm: Farm) -> str:
    with farm.engine.connect() as connection:
        return str(connection.execute(select(jobs.c.state)).scalar())


def start_builder(farm: Farm, tmp_path: Path, stop: threading.Event) -> threading.Thread:
    options = BuilderOptions(workdir=tmp_path / "work", pip_options=OPTIONS)
    thread = threading.Thread(target=run_builder, args=(farm.client(), options, stop))
    thread.start()
    return thread


def publish_slow(farm: Farm, tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path / "sdists", "demo-slow", "1.0", build_sleep=60)
    farm.publish(sdist, "demo-slow", "1.0")


def tell(farm: Farm, command: str | None) -> None:
    with farm.engine.begin() as connection:
        assert set_command(connection, "local", command)


def test_skip_ends_the_build_under_way_and_fails_the_job_as_skipped(
    farm: Farm, tmp_path: Path
) -> None:
    publish_slow(farm, tmp_path)
    stop = threading.Event()
    builder = start_builder(farm, tmp_path, stop)
    try:
        wait_for(lambda: job_state(farm) == "building")
        time.sleep(1.0)  # pip is running
        tell(farm, "skip")
        wait_for(lambda: job_state(farm) == "failed", seconds=20)
    finally:
        stop.set()
        builder.join(timeout=30)
    with farm.engine.connect() as connection:
        build = connection.execute(select(builds)).one()
        job = connection.execute(select(jobs)).one()
        command = command_of(connection, "local")
    assert not builder.is_alive()
    assert build.status == "cancelled"
    assert build.duration < 30  # the build hook sleeps a minute: it was cut short
    assert job.reason == build.reason == "skipped by an operator on builder local"
    assert command is None  # a skip is spent once acted on
    assert not list((tmp_path / "work").iterdir())  # the build directory went too


def test_stop_hands_the_job_back_and_ends_the_builder(farm: Farm, tmp_path: Path) -> None:
    publish_slow(farm, tmp_path)
    builder = start_builder(farm, tmp_path, threading.Event())  # nothing but the master stops it
    wait_for(lambda: job_state(farm) == "building")
    tell(farm, "stop")
    builder.join(timeout=30)
    assert not builder.is_alive()
    with farm.engine.connect() as connection:
        build = connection.execute(select(builds)).one()
        job = connection.execute(select(jobs)).one()
    assert (build.status, build.reason) == ("cancelled", "stopped on the master's command")
    assert (job.state, job.builder, job.lease_expires) == ("pending", None, None)
    # A builder started again after a stop works: the stop is spent at its hello.
    with farm.engine.begin() as connection:
        connection.execute(jobs.update().values(state="skipped"))  # nothing to build this time
    options = BuilderOptions(workdir=tmp_path / "work", pip_options=OPTIONS)
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    assert run_builder(farm.client(), options, stop) == 0
    with farm.engine.connect() as connection:
        assert command_of(connection, "local") is None


def test_pause_claims_nothing_until_resumed(farm: Farm, tmp_path: Path) -> None:
    tell(farm, "pause")
    farm.publish(make_sdist(tmp_path / "sdists", "demo-pure", "1.0"), "demo-pure", "1.0")
    stop = threading.Event()
    builder = start_builder(farm, tmp_path, stop)
    try:
        time.sleep(2.0)  # several claims, each answered "pause"
        assert job_state(farm) == "pending"
        tell(farm, None)  # wheelfarm builders resume local
        wait_for(lambda: job_state(farm) == "built")
    finally:
        stop.set()
        builder.join(timeout=30)
    assert not builder.is_alive()


def test_a_builder_shutting_down_hands_its_job_back_at_once(farm: Farm, tmp_path: Path) -> None:
    publish_slow(farm, tmp_path)
    stop = threading.Event()
    builder = start_builder(farm, tmp_path, stop)
    wait_for(lambda: job_state(farm) == "building")
    time.sleep(1.0)
    started = time.monotonic()
    stop.set()  # what Ctrl-C or SIGTERM does to `wheelfarm builder` and `wheelfarm up`
    builder.join(timeout=30)
    assert time.monotonic() - started < 10  # no waiting for the build or for the lease
    with farm.engine.connect() as connection:
        build = connection.execute(select(builds)).one()
        job = connection.execute(select(jobs)).one()
    assert (build.status, build.reason) == ("cancelled", "the builder is shutting down")
    assert (job.state, job.attempts) == ("pending", 1)
