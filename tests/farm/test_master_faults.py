"""The master failing under a builder: restarted mid-upload, and its disk full."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tests.farm.conftest import Farm, hello
from tests.fixtures.sdists import make_sdist
from tests.fixtures.slow_proxy import SlowProxy
from tests.fixtures.wheels import record_for
from wheelfarm.builder.client import MasterClient
from wheelfarm.builder.loop import BuilderOptions, run_builder
from wheelfarm.http import RetryPolicy
from wheelfarm.protocol import FileAccepted
from wheelfarm.store.schema import build_files, builds, jobs

PATIENT = RetryPolicy(retries=40, initial_wait=0.2, max_wait=0.5)  # about 15 s of retries
ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def big_pure_wheel(directory: Path, size: int) -> Path:
    """A valid wheel of demo-pure 1.0 carrying ``size`` random bytes, so its upload takes time."""
    path = directory / "demo_pure-1.0-py3-none-any.whl"
    info = "demo_pure-1.0.dist-info"
    members = {
        "demo_pure/blob.bin": os.urandom(size),
        f"{info}/METADATA": b"Metadata-Version: 2.1\nName: demo-pure\nVersion: 1.0\n",
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        archive.writestr(f"{info}/RECORD", record_for(members, info))
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def master_process(
    database: str, wheels: Path, index: str, port: int
) -> Iterator[subprocess.Popen[bytes]]:
    """The builder API in its own process, listening on ``port``; killed on the way out."""
    command = [sys.executable, "-m", "tests.fixtures.master_process", database, str(wheels)]
    process = subprocess.Popen([*command, index, str(port)], cwd=ROOT)
    try:

        def listening() -> bool:
            assert process.poll() is None, "the master process died"
            try:
                return httpx.get(f"http://127.0.0.1:{port}/openapi.json").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(listening)
        yield process
    finally:
        process.kill()
        process.wait()


def test_master_killed_mid_upload_builder_retries_and_nothing_partial_is_published(
    farm: Farm, tmp_path: Path
) -> None:
    farm.publish(make_sdist(tmp_path / "sdists", "demo-pure", "1.0"), "demo-pure", "1.0")
    database = farm.engine.url.render_as_string(hide_password=False)
    wheels = tmp_path / "master-wheels"
    staging = tmp_path / "master-wheels.staging"  # FarmConfig's default, outside the tree
    port = free_port()
    wheel = big_pure_wheel(tmp_path, size=6_000_000)
    sha256 = hashlib.sha256(wheel.read_bytes()).hexdigest()
    accepted: list[FileAccepted] = []
    index = farm.upstream.simple_url
    with SlowProxy(port, rate=1_500_000) as proxy:  # about 4 s for the upload
        client = MasterClient(f"http://127.0.0.1:{proxy.port}", farm.token, farm.http, PATIENT)
        with master_process(database, wheels, index, port):
            hello(client)
            job = client.claim().job
            assert job is not None
            upload = threading.Thread(
                target=lambda: accepted.append(client.upload(job.build_id, wheel, sha256))
            )
            upload.start()

            def staged() -> bool:
                incoming = staging
                return incoming.exists() and any(p.stat().st_size > 0 for p in incoming.iterdir())

            wait_for(staged)  # bytes are arriving at the master: kill it now (on leaving)
        assert not (wheels / "demo-pure").exists()  # nothing of the cut upload was published
        (partial,) = staging.iterdir()  # the dead master's staging file...
        os.utime(partial, (time.time() - 7200, time.time() - 7200))  # ...two hours later
        with master_process(database, wheels, index, port):  # restarted on the same port
            upload.join(timeout=120)
    assert not upload.is_alive()
    assert not partial.exists()  # swept when the master started again
    assert [a.sha256 for a in accepted] == [sha256]
    published = list((wheels / "demo-pure").iterdir())
    assert [p.name for p in published] == [wheel.name]
    assert published[0].read_bytes() == wheel.read_bytes()
    with farm.engine.connect() as connection:
        rows = connection.execute(select(build_files.c.filename, build_files.c.sha256)).all()
    assert [tuple(row) for row in rows] == [(wheel.name, sha256)]


@pytest.fixture
def small_disk(farm: Farm) -> Iterator[Path]:
    """The master's wheel directory on a 2 MiB tmpfs (needs root, as CI has)."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("the disk-full test mounts a tmpfs and needs root")
        pytest.skip("mounting a tmpfs needs root")
    farm.wheels.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(farm.wheels)], check=True)
    try:
        yield farm.wheels
    finally:
        subprocess.run(["umount", "-l", str(farm.wheels)], check=True)


def fill(directory: Path) -> Path:
    """Fill a file system to the last byte; returns the filler."""
    filler = directory / "filler"
    handle = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(handle, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(handle)
    return filler


def test_disk_full_on_the_master_is_refused_cleanly_and_retried_later(
    farm: Farm, small_disk: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    farm.publish(make_sdist(tmp_path / "sdists", "demo-pure", "1.0"), "demo-pure", "1.0")
    filler = fill(small_disk)
    client = MasterClient(farm.server.url, farm.token, farm.http, PATIENT)
    options = BuilderOptions(workdir=tmp_path / "work", pip_options=("--no-build-isolation",))
    caplog.set_level(logging.WARNING, logger="wheelfarm.http")
    builder = threading.Thread(
        target=run_builder, args=(client, options, threading.Event()), kwargs={"jobs": 1}
    )
    builder.start()
    try:
        wait_for(lambda: any("507" in record.getMessage() for record in caplog.records))
        published = small_disk / "demo-pure"  # refused: nothing published (the staging
        assert not published.exists() or not any(published.iterdir())  # is on another disk)
        assert not any(farm.staging.iterdir())  # and the staging file is gone
        filler.unlink()  # the operator makes room
    finally:
        builder.join(timeout=120)
    assert not builder.is_alive()
    with farm.engine.connect() as connection:
        state = connection.execute(select(jobs.c.state)).scalar()
        statuses = connection.execute(select(builds.c.status)).scalars().all()
    assert (state, statuses) == ("built", ["built"])
    assert [p.name for p in (small_disk / "demo-pure").iterdir()] == [
        "demo_pure-1.0-py3-none-any.whl"
    ]
