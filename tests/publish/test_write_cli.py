"""`wheelfarm write [--all]` as a user runs it, and the publisher thread of `wheelfarm up`."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

from sqlalchemy import Engine

from tests.farm.test_cli_farm import wheelfarm
from tests.publish.states import UPSTREAM, State
from wheelfarm.config import Settings
from wheelfarm.publish.scheduler import start_publisher


def test_write_publishes_what_changed_and_all_on_request(
    tmp_path: Path, database_url: str, engine: Engine
) -> None:
    data = tmp_path / "data"
    state = State(engine, data)
    state.target()
    state.release("foo", "1.0")
    wheel = state.import_wheel("foo-1.0-py3-none-any.whl")

    def write(*args: str) -> str:
        done = wheelfarm(tmp_path, database_url, "--data-dir", str(data), "write", *args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    first = write()
    assert "  foo" in first and "wrote 1 project " in first and "site pages written" in first
    www = data / "www"
    assert (www / "simple" / "foo" / "index.html").exists()
    assert Path(f"{wheel}.metadata").exists()
    assert "wrote 0 projects" in write()  # nothing changed since
    everything = write("--all")
    assert "wrote 1 project " in everything and "0 files written, 0 removed" in everything
    sitemap = (www / "sitemap.xml").read_text()
    assert "http://127.0.0.1:8080/" in sitemap  # base_url defaults to the host and port

    state.event("foo", None, "remove")
    gone = write()
    assert "  foo" in gone and "removed" in gone
    assert not (www / "simple" / "foo").exists() and not wheel.exists()


def test_the_publisher_of_up_publishes_a_change_within_seconds(
    tmp_path: Path, database_url: str, engine: Engine
) -> None:
    data = tmp_path / "data"
    state = State(engine, data)
    state.release("foo", "1.0")
    settings = replace(Settings(), data_dir=data, database=database_url, upstream=UPSTREAM)
    stop = threading.Event()
    thread = start_publisher(engine, settings, stop, interval=0.1)
    try:
        page = data / "www" / "simple" / "foo" / "index.json"
        deadline = time.monotonic() + 30
        while not page.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert page.exists()
        state.release("bar", "1.0")
        changed = time.monotonic()
        other = data / "www" / "simple" / "bar" / "index.json"
        while not other.exists() and time.monotonic() < changed + 30:
            time.sleep(0.02)
        assert other.exists()
        assert time.monotonic() - changed < 5
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
