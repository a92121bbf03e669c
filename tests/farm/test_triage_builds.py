"""Failing builds through a real farm: the builder frames the log, the master triages it.

A real builder (the loop, its sandbox, real pip) builds real failing sdists from
:mod:`tests.fixtures.failing_builds` against the master on loopback; the master records each
build's category and telling line from the log it received.
"""

from __future__ import annotations

import shutil
import threading
import zlib
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.farm.conftest import Farm
from tests.fixtures.failing_builds import FAILING_BUILDS, sdist_with_files
from wheelfarm.builder.loop import BuilderOptions, run_builder
from wheelfarm.builder.resources import parallel_environment
from wheelfarm.builder.sandbox import BuildLimits
from wheelfarm.store.schema import builds, jobs

_CASES = {case.name: case for case in FAILING_BUILDS}

# setup.py prints what the sandbox passed on, then fails: the log carries both.
_SHOWS_ITS_ENVIRONMENT = """\
import os
for name in ("MAKEFLAGS", "CMAKE_BUILD_PARALLEL_LEVEL", "NPY_NUM_BUILD_JOBS", "MAX_JOBS"):
    print(f"env {name}={os.environ.get(name)}")
print("cwd", os.getcwd())
raise SystemExit("deliberate build failure")
"""


def _build_all(
    farm: Farm,
    tmp_path: Path,
    count: int,
    *,
    parallel_jobs: int | None = None,
    limits: BuildLimits | None = None,
) -> None:
    builder = BuilderOptions(
        workdir=tmp_path / "work",
        pip_options=("--no-build-isolation",),
        parallel_jobs=parallel_jobs,
        limits=limits or BuildLimits(),
    )
    assert run_builder(farm.client(), builder, threading.Event(), jobs=count) == count


def _stored(farm: Farm) -> dict[str, tuple[str | None, str | None, str]]:
    """project -> (category, reason, log) of its build."""
    with farm.engine.connect() as connection:
        rows = connection.execute(
            select(builds.c.project, builds.c.category, builds.c.reason, builds.c.log)
        ).all()
    return {
        row.project: (row.category, row.reason, zlib.decompress(row.log).decode()) for row in rows
    }


def test_a_real_build_is_framed_and_gets_its_parallel_jobs(farm: Farm, tmp_path: Path) -> None:
    sdist = sdist_with_files(
        tmp_path / "sdists", "showsenv", "1.0", {"setup.py": _SHOWS_ITS_ENVIRONMENT}
    )
    farm.publish(sdist, "showsenv", "1.0")
    _build_all(farm, tmp_path, 1, parallel_jobs=3)

    category, reason, log = _stored(farm)["showsenv"]
    for name, value in parallel_environment(3).items():
        assert f"env {name}={value}\n" in log  # what the build itself saw
    header, _, rest = log.partition("=== build output ===\n")
    assert header.startswith("=== wheelfarm build ===\nproject: showsenv\nversion: 1.0\n")
    assert "builder: local\n" in header
    parallel = "CMAKE_BUILD_PARALLEL_LEVEL=3 MAKEFLAGS=-j3 MAX_JOBS=3 NPY_NUM_BUILD_JOBS=3"
    assert f"parallel: {parallel}\n" in header
    assert "\npip: " in header and "\npip: ?" not in header
    assert "=== end of build ===\n" in rest and "\noutcome: failed\n" in rest
    assert str(tmp_path) not in log  # the work directory is <work>, the build's <build>
    assert " cwd <build>/tmp/pip-" in log  # pip unpacks the sdist in the build's TMPDIR
    assert "=== wheelfarm master ===\nrecorded: failed\n" in rest
    assert category is not None and reason is not None


def test_the_master_triages_real_failed_builds(farm: Farm, tmp_path: Path) -> None:
    names = ["oldsafe", "py2only"] + (["csyntax"] if shutil.which("gcc") else [])
    for name in names:
        case = _CASES[name]
        farm.publish(case.make(tmp_path / "sdists"), name, "1.0")
    _build_all(farm, tmp_path, len(names))

    stored = _stored(farm)
    assert stored["oldsafe"][:2] == (
        "sdist-broken",
        "ImportError: cannot import name 'Feature' from 'setuptools' "
        "(<env>/lib/python3.11/site-packages/setuptools/__init__.py)",
    )
    assert stored["py2only"][0] == "python-incompatible"
    if "csyntax" in names:
        assert stored["csyntax"][:2] == (
            "compiler-error",
            "broken_ext.c:2:35: error: expected \u2018;\u2019 before \u2018}\u2019 token",
        )
    with farm.engine.connect() as connection:
        reasons = dict(connection.execute(select(jobs.c.project, jobs.c.reason)).all())
    assert reasons["oldsafe"] == stored["oldsafe"][1]  # what `wheelfarm builds --failed` shows


@pytest.mark.parametrize("name", ["greedy", "sleepy"])
def test_a_sandbox_limit_is_triaged_as_the_resource_it_limits(
    farm: Farm, tmp_path: Path, name: str
) -> None:
    case = _CASES[name]
    farm.publish(case.make(tmp_path / "sdists"), name, "1.0")
    limits = BuildLimits(case.timeout, case.memory_bytes, case.file_bytes)
    _build_all(farm, tmp_path, 1, limits=limits)
    assert _stored(farm)[name][0] == case.category
