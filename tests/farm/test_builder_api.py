"""The builder API over real HTTP on loopback, and real builds by a real builder."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
import venv
import zlib
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from tests.farm.conftest import Farm, hello
from tests.fixtures.sdists import make_sdist, module_name
from wheelfarm.builder.client import MasterRefused
from wheelfarm.builder.loop import BuilderOptions, run_builder
from wheelfarm.farm.jobs import schedule_project
from wheelfarm.farm.registry import add_target
from wheelfarm.names import canonical
from wheelfarm.protocol import API_PREFIX, BuildReport, Hello
from wheelfarm.store.schema import build_files, builds, jobs
from wheelfarm.targets import Target, local_target


def test_unknown_token_gets_401_and_changes_nothing(farm: Farm) -> None:
    with pytest.raises(MasterRefused) as refused:
        hello(farm.client("not-a-token"))
    assert refused.value.status == 401
    assert "unknown or revoked builder token" in refused.value.detail


def test_malformed_requests_get_422_naming_the_field(farm: Farm) -> None:
    response = httpx.post(
        f"{farm.server.url}{API_PREFIX}/hello",
        headers={"Authorization": f"Bearer {farm.token}"},
        json={"target": "", "python": "3", "os": "x"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "target"]


def test_a_target_the_master_does_not_build_for_is_refused(farm: Farm) -> None:
    with pytest.raises(MasterRefused, match="is not configured on the master"):
        farm.client().hello(Hello(target="cp39-cp39-linux_armv7l", python="3.9", os="x"))


def test_real_builds_of_a_pure_and_a_c_sdist_install_and_import(farm: Farm, tmp_path: Path) -> None:
    for name, kind in (("demo-pure", "pure"), ("demo-c", "c")):
        farm.publish(make_sdist(tmp_path / "sdists", name, "1.0", kind=kind), name, "1.0")
    options = BuilderOptions(workdir=tmp_path / "work", pip_options=("--no-build-isolation",))
    handled = run_builder(farm.client(), options, threading.Event(), jobs=2)
    assert handled == 2
    with farm.engine.connect() as connection:
        states = {row.project: row.state for row in connection.execute(select(jobs))}
        built = {row.project: row.filename for row in connection.execute(select(build_files))}
        logs = [row.log_bytes for row in connection.execute(select(builds))]
    assert states == {"demo-pure": "built", "demo-c": "built"}
    assert built["demo-pure"].endswith("-py3-none-any.whl")
    assert f"-{local_target().interpreter}-" in built["demo-c"]
    assert all(size and size > 0 for size in logs)
    # A user installs them from the stored files into a fresh environment.
    environment = tmp_path / "user-venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    wheels = [str(farm.wheels / project / filename) for project, filename in built.items()]
    subprocess.run(
        [python, "-m", "pip", "install", "--no-index", "--no-deps", *wheels],
        check=True,
        capture_output=True,
    )
    code = (
        f"import {module_name('demo-c')}._speedups as s, {module_name('demo-pure')} as p;"
        "print(s.answer(), p.VALUE)"
    )
    output = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True)
    assert output.stdout.split() == ["42", "demo-pure", "1.0"]


def test_a_failing_build_is_recorded_with_its_log(farm: Farm, tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path / "sdists", "demo-broken", "1.0", fail_build=True)
    farm.publish(sdist, "demo-broken", "1.0")
    options = BuilderOptions(workdir=tmp_path / "work", pip_options=("--no-build-isolation",))
    run_builder(farm.client(), options, threading.Event(), jobs=1)
    with farm.engine.connect() as connection:
        build = connection.execute(select(builds)).one()
        job = connection.execute(select(jobs)).one()
    assert (build.status, job.state) == ("failed", "failed")
    assert b"deliberate build failure" in zlib.decompress(build.log)


def test_a_silent_builders_job_is_leased_again(farm: Farm, tmp_path: Path) -> None:
    farm.publish(make_sdist(tmp_path / "sdists", "demo-pure", "1.0"), "demo-pure", "1.0")
    first = farm.client()
    hello(first)
    claim = first.claim()
    assert claim.job is not None
    assert first.claim().job is None  # nothing else to do while the lease holds
    farm.clock.now += 301  # past the lease: the builder went silent
    again = first.claim()
    assert again.job is not None and again.job.project == "demo-pure"
    with pytest.raises(MasterRefused, match=r"already over|not yours") as refused:
        stale = BuildReport(status="failed", reason="x", duration=1.0)
        first.report(claim.job.build_id, stale)  # the old build id is stale now
    assert refused.value.status in (404, 409)


def test_an_upload_that_is_not_a_wheel_is_refused_with_the_reason(
    farm: Farm, tmp_path: Path
) -> None:
    farm.publish(make_sdist(tmp_path / "sdists", "demo-pure", "1.0"), "demo-pure", "1.0")
    client = farm.client()
    hello(client)
    job = client.claim().job
    assert job is not None
    fake = tmp_path / "demo_pure-1.0-py3-none-any.whl"
    fake.write_bytes(b"this is not a zip file")
    with pytest.raises(MasterRefused) as refused:
        client.upload(job.build_id, fake, hashlib.sha256(fake.read_bytes()).hexdigest())
    assert refused.value.status == 422 and "zip" in refused.value.detail
    assert not (farm.wheels / "demo-pure").exists() or not any(
        (farm.wheels / "demo-pure").iterdir()
    )


def test_a_pure_wheel_built_for_one_target_serves_the_others(farm: Farm, tmp_path: Path) -> None:
    other = Target.parse("cp311-cp311-linux_armv7l")
    with farm.engine.begin() as connection:
        add_target(connection, other)
    farm.publish(make_sdist(tmp_path / "sdists", "demo-pure", "1.0"), "demo-pure", "1.0")
    with farm.engine.begin() as connection:
        schedule_project(
            connection, canonical("demo-pure"), [local_target(), other], now=farm.clock()
        )
    options = BuilderOptions(workdir=tmp_path / "work", pip_options=("--no-build-isolation",))
    assert run_builder(farm.client(), options, threading.Event(), jobs=1) == 1
    with farm.engine.connect() as connection:
        states = {row.target: row.state for row in connection.execute(select(jobs))}
        built = connection.execute(select(build_files.c.filename)).scalars().all()
    assert states == {local_target().name: "built", other.name: "built"}
    assert built == ["demo_pure-1.0-py3-none-any.whl"]


def test_uploading_a_file_name_already_published_is_refused_cleanly(
    farm: Farm, tmp_path: Path
) -> None:
    farm.publish(make_sdist(tmp_path / "sdists", "demo-pure", "1.0"), "demo-pure", "1.0")
    options = BuilderOptions(workdir=tmp_path / "work", pip_options=("--no-build-isolation",))
    run_builder(farm.client(), options, threading.Event(), jobs=1)
    (wheel,) = (farm.wheels / "demo-pure").iterdir()
    with farm.engine.begin() as connection:
        connection.execute(update(jobs).values(state="pending"))  # as if a second target raced
    client = farm.client()
    hello(client)
    job = client.claim().job
    assert job is not None
    with pytest.raises(MasterRefused) as refused:
        client.upload(job.build_id, wheel, hashlib.sha256(wheel.read_bytes()).hexdigest())
    assert refused.value.status == 409 and "already published" in refused.value.detail


def test_a_builder_process_killed_mid_build_loses_the_job_and_it_is_built_once(
    farm: Farm, tmp_path: Path
) -> None:
    sdist = make_sdist(tmp_path / "sdists", "demo-slow", "1.0", build_sleep=3.0)
    farm.publish(sdist, "demo-slow", "1.0")
    env = {
        **os.environ,
        "WHEELFARM_BUILDER_TOKEN": farm.token,
        "WHEELFARM_DATA_DIR": str(tmp_path / "killed"),
        "WHEELFARM_UPSTREAM": farm.upstream.simple_url,
    }
    command = [
        sys.executable,
        "-m",
        "wheelfarm",
        "builder",
        "--master",
        farm.server.url,
        "--pip-option=--no-build-isolation",
    ]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    state = ""
    while state != "building" and time.monotonic() < deadline:
        time.sleep(0.2)
        with farm.engine.connect() as connection:
            state = connection.execute(select(jobs.c.state)).scalar() or ""
    time.sleep(1.0)  # pip is running now
    process.kill()  # SIGKILL: no goodbye, no report
    process.wait()
    assert state == "building"
    farm.clock.now += 301  # the lease runs out
    options = BuilderOptions(workdir=tmp_path / "work", pip_options=("--no-build-isolation",))
    assert run_builder(farm.client(), options, threading.Event(), jobs=1) == 1
    with farm.engine.connect() as connection:
        statuses = sorted(row.status for row in connection.execute(select(builds)))
        files = connection.execute(select(build_files.c.filename)).scalars().all()
        job = connection.execute(select(jobs)).one()
    assert statuses == ["built", "failed"]  # the abandoned attempt, then the real one
    assert (job.state, job.attempts) == ("built", 2)
    assert files == ["demo_slow-1.0-py3-none-any.whl"]
    assert [p.name for p in (farm.wheels / "demo-slow").iterdir()] == files  # no orphans
    assert not any(farm.staging.iterdir())
