"""``wheelfarm logs ingest``: the command writes in a child process; what it read is in the
store when it ends, whether the file ended or Ctrl-C stopped ``--follow``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.farm.test_cli_farm import _hear_ctrl_c, wheelfarm
from tests.stats.lines import nginx_line

WHEEL = "/files/demo/demo-1.0-cp311-cp311-linux_x86_64.whl"


def log_lines(count: int) -> bytes:
    now = time.time()
    return b"".join(nginx_line(now - i, WHEEL, client=f"198.51.100.{i}") for i in range(count))


def downloads(tmp_path: Path, database_url: str) -> int:
    found = wheelfarm(tmp_path, database_url, "stats", "--json")
    assert found.returncode == 0, found.stderr
    return int(json.loads(found.stdout)["downloads_total"])


@pytest.mark.slow
def test_ingest_counts_a_file_once_however_often_it_is_run(tmp_path, database_url):
    log = tmp_path / "access.log"
    log.write_bytes(log_lines(12))
    reports = [wheelfarm(tmp_path, database_url, "logs", "ingest", str(log), "--json")]
    reports.append(wheelfarm(tmp_path, database_url, "logs", "ingest", str(log), "--json"))
    assert [r.returncode for r in reports] == [0, 0], [r.stderr for r in reports]
    found = [json.loads(r.stdout) for r in reports]
    assert [(f["lines"], f["hits"], f["duplicates"]) for f in found] == [(12, 12, 0), (12, 0, 12)]
    assert downloads(tmp_path, database_url) == 12


def _own_group_hearing_ctrl_c() -> None:
    _hear_ctrl_c()
    os.setpgrp()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stop_sent_to_the_group_stops_follow_with_what_it_read_written(
    tmp_path, database_url, signum
):
    log = tmp_path / "access.log"
    log.write_bytes(log_lines(5))
    env = {**os.environ, "WHEELFARM_DATABASE": database_url}
    command = [sys.executable, "-m", "wheelfarm", "logs", "ingest", str(log), "--follow"]
    process = subprocess.Popen(
        [*command, "--json"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_own_group_hearing_ctrl_c,
    )
    try:
        deadline = time.monotonic() + 60
        while downloads(tmp_path, database_url) < 5 and time.monotonic() < deadline:
            time.sleep(0.5)  # written when it waits for more: the whole file is then in
        os.killpg(process.pid, signum)  # the group, as a terminal or systemd does
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert json.loads(out)["hits"] == 5
    assert downloads(tmp_path, database_url) == 5
