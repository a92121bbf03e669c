"""A real rebuild: built by a real builder, tagged, taken in, published beside the original,
and chosen by pip from the served index; on both engines."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import httpx
import pytest
from installer.sources import WheelFile
from sqlalchemy import select

from tests.farm.conftest import Farm, hello
from tests.fixtures.sdists import make_sdist
from tests.publish.test_clients import clean_env, fresh_venv
from wheelfarm.builder.build_tags import retag_wheel, tagged_filename
from wheelfarm.builder.client import MasterRefused
from wheelfarm.builder.loop import BuilderOptions, run_builder
from wheelfarm.publish.regenerate import write_all
from wheelfarm.publish.tree import Tree
from wheelfarm.store.schema import jobs
from wheelfarm.web.runner import serve_index_in_thread

ORIGINAL = "demo_pure-1.0-py3-none-any.whl"
REBUILT = "demo_pure-1.0-1-py3-none-any.whl"


def wheelfarm(tmp_path: Path, database: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHEELFARM_")}
    env.update(WHEELFARM_DATABASE=database, WHEELFARM_UPSTREAM="http://127.0.0.1:9/simple/")
    return subprocess.run(
        [sys.executable, "-m", "wheelfarm", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def build_once(farm: Farm, tmp_path: Path) -> None:
    options = BuilderOptions(workdir=tmp_path / "work", pip_options=("--no-build-isolation",))
    assert run_builder(farm.client(), options, threading.Event(), jobs=1) == 1


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_rebuilt_release_is_published_beside_the_original_and_pip_takes_it(
    farm: Farm, database_url: str, tmp_path: Path
) -> None:
    farm.publish(make_sdist(tmp_path / "sdists", "demo-pure", "1.0"), "demo-pure", "1.0")
    build_once(farm, tmp_path)
    original = farm.wheels / "demo-pure" / ORIGINAL
    before = sha256(original)

    done = wheelfarm(
        tmp_path, database_url, "rebuild", "demo-pure", "1.0", "--reason", "toolchain regression"
    )
    assert done.returncode == 0, done.stderr
    assert "build 1" in done.stdout
    build_once(farm, tmp_path)

    rebuilt = farm.wheels / "demo-pure" / REBUILT
    assert {p.name for p in original.parent.glob("*.whl")} == {ORIGINAL, REBUILT}
    assert sha256(original) == before  # the old name kept its bytes: lock files still work
    with zipfile.ZipFile(rebuilt) as archive:
        assert "Build: 1" in archive.read("demo_pure-1.0.dist-info/WHEEL").decode()
        archive.filename = REBUILT
        WheelFile(archive).validate_record(validate_contents=True)
    with farm.engine.connect() as connection:
        row = connection.execute(select(jobs)).one()
    assert (row.state, row.build_number, row.rebuild_reason) == (
        "built",
        1,
        "toolchain regression",
    )

    # Publish and serve the index: both files listed; pip takes the higher build number.
    tree = Tree(tmp_path / "www", tmp_path / "withdrawn")
    shutil.copytree(farm.wheels, tree.files)
    write_all(farm.engine, tree, upstream_simple_url=farm.upstream.simple_url, base_url="http://x")
    server = serve_index_in_thread(tree.root)
    try:
        html = httpx.get(f"{server.url}/simple/demo-pure/").text
        listing = httpx.get(
            f"{server.url}/simple/demo-pure/",
            headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        ).json()
        assert ORIGINAL in html and REBUILT in html
        assert {ORIGINAL, REBUILT} <= {f["filename"] for f in listing["files"]}
        page = httpx.get(f"{server.url}/project/demo-pure/").text
        assert "build 1: toolchain regression" in page
        document = httpx.get(f"{server.url}/project/demo-pure/json/").json()
        (cell,) = document["releases"]["1.0"]["builds"].values()
        assert (cell["build_number"], cell["rebuild_reason"]) == (1, "toolchain regression")
        python = fresh_venv(tmp_path)
        report = tmp_path / "report.json"
        installed = subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
             "--report", str(report), "--index-url", f"{server.url}/simple/", "demo-pure==1.0"],
            env=clean_env(tmp_path), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert installed.returncode == 0, installed.stderr
        (chosen,) = json.loads(report.read_text())["install"]
        assert chosen["download_info"]["url"].endswith(f"/{REBUILT}")
        old = httpx.get(f"{server.url}/files/demo-pure/{ORIGINAL}")
        assert old.status_code == 200 and hashlib.sha256(old.content).hexdigest() == before
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("number", "wheel_says", "refusal"),
    [
        (0, None, "already published"),  # the first build's name again: never new bytes
        (2, "2", "build tag 2 in the file name, expected 1"),  # a number the job did not give
        (
            1,
            None,
            "WHEEL says Build: none, the file name's build tag is 1",
        ),  # name and WHEEL differ
    ],
)
def test_intake_takes_only_the_jobs_build_number(
    farm: Farm, tmp_path: Path, number: int, wheel_says: str | None, refusal: str
) -> None:
    farm.publish(make_sdist(tmp_path / "sdists", "demo-pure", "1.0"), "demo-pure", "1.0")
    build_once(farm, tmp_path)
    sent = tmp_path / "sent"
    sent.mkdir()
    wheel = shutil.copy(farm.wheels / "demo-pure" / ORIGINAL, sent / ORIGINAL)
    if wheel_says is not None:
        wheel = retag_wheel(Path(wheel), int(wheel_says))
    elif number:
        wheel = Path(wheel).rename(sent / tagged_filename(ORIGINAL, number))
    with farm.engine.begin() as connection:
        connection.execute(
            jobs.update().values(state="pending", build_number=1)  # as `rebuild` leaves it
        )
    client = farm.client()
    hello(client)
    job = client.claim().job
    assert job is not None and job.build_number == 1
    with pytest.raises(MasterRefused, match=refusal):
        client.upload(job.build_id, Path(wheel), sha256(Path(wheel)))
