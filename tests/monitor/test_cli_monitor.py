"""``wheelfarm admins``, ``wheelfarm farm pause|resume`` from the command line."""

from __future__ import annotations

import json
import signal
import socket
import stat
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from tests.farm.test_cli_farm import start_up, wheelfarm
from tests.fixtures.fake_upstream import FakeUpstream
from wheelfarm.farm.pause import farm_paused
from wheelfarm.monitor.admins import TOKEN_FILE, authenticate_admin
from wheelfarm.store.database import open_store
from wheelfarm.store.schema import admins


def test_admins_add_list_remove_and_the_token_works_once_shown(
    tmp_path: Path, database_url: str
) -> None:
    added = wheelfarm(tmp_path, database_url, "admins", "add", "alice")
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip().splitlines()[-1]
    engine = open_store(database_url)
    try:
        with engine.connect() as connection:
            assert authenticate_admin(connection, token) == "alice"
            stored = connection.execute(select(admins.c.token_hash)).scalar_one()
        assert token not in stored  # only its hash is kept
        listed = wheelfarm(tmp_path, database_url, "admins", "list", "--json")
        assert [a["name"] for a in json.loads(listed.stdout)] == ["alice"]
        assert wheelfarm(tmp_path, database_url, "admins", "add", "alice").returncode == 2
        assert wheelfarm(tmp_path, database_url, "admins", "remove", "alice").returncode == 0
        assert wheelfarm(tmp_path, database_url, "admins", "remove", "alice").returncode == 2
        with engine.connect() as connection:
            assert authenticate_admin(connection, token) is None
    finally:
        engine.dispose()


def test_farm_pause_and_resume(tmp_path: Path, database_url: str) -> None:
    paused = wheelfarm(tmp_path, database_url, "farm", "pause")
    assert paused.returncode == 0 and "paused" in paused.stdout
    engine = open_store(database_url)
    try:
        with engine.connect() as connection:
            assert farm_paused(connection) == "operator"
        resumed = wheelfarm(tmp_path, database_url, "farm", "resume")
        assert "builds again" in resumed.stdout
        with engine.connect() as connection:
            assert farm_paused(connection) is None
        again = wheelfarm(tmp_path, database_url, "farm", "resume")
        assert "was not paused" in again.stdout
    finally:
        engine.dispose()


def test_up_makes_the_local_admin_and_serves_the_monitor(tmp_path: Path, database_url: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with FakeUpstream() as upstream:
        process = start_up(tmp_path, database_url, upstream.simple_url, port=port)
        try:
            token_file = tmp_path / "data" / TOKEN_FILE
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            data: dict[str, Any] = {}
            while time.monotonic() < deadline and not data.get("builders"):
                time.sleep(0.3)
                if token_file.exists():
                    headers = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
                    try:
                        data = httpx.get(f"{base}/monitor/data.json", headers=headers).json()
                    except httpx.HTTPError:
                        continue
            status = httpx.get(f"{base}/status.json").json()
            metrics = httpx.get(f"{base}/metrics")
        finally:
            process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=60)
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert f"the local admin's token is in {token_file}" in stdout.replace("\n", "")
    assert [b["name"] for b in data["builders"]] == ["local"]
    assert data["master"]["at"] is not None  # the sampler ran
    assert status["targets"][0]["builders"]
    assert metrics.status_code == 401
    assert process.returncode == 0, stderr
