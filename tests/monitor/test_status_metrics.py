"""The public status, the Prometheus metrics, and the farm's controls (by hand and by disk)."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, insert

from tests.farm.conftest import Clock
from tests.monitor.conftest import Master, start_master
from wheelfarm.farm.pause import farm_paused
from wheelfarm.monitor.routes import MonitorOptions
from wheelfarm.monitor.sampler import SamplerConfig, sample_once
from wheelfarm.protocol import Health, Heartbeat
from wheelfarm.store.journal import POSITION, UPSTREAM_HEAD, set_state
from wheelfarm.store.schema import build_files, builds, events, jobs
from wheelfarm.targets import local_target

TARGET = local_target().name


def _queue(master: Master, *ages: float, first: int = 0) -> None:
    with master.engine.begin() as connection:
        for number, age in enumerate(ages, start=first):
            connection.execute(
                insert(jobs).values(
                    project=f"p{number}",
                    version="1",
                    target=TARGET,
                    state="pending",
                    updated_at=master.clock() - age,
                )
            )


def _history(master: Master) -> None:
    """Two finished builds, a wheel, and a follower 40 serials behind, an hour late."""
    now = master.clock()
    with master.engine.begin() as connection:
        for number, (status, duration) in enumerate((("built", 100.0), ("failed", 4000.0))):
            connection.execute(
                insert(builds).values(
                    id=number + 1,
                    project="old",
                    version=str(number),
                    target=TARGET,
                    builder="pi-1",
                    started_at=now - 7200,
                    duration=duration,
                    status=status,
                )
            )
        connection.execute(
            insert(build_files).values(
                filename="old-0-py3-none-any.whl",
                build_id=1,
                project="old",
                version="0",
                target=TARGET,
                sha256="0" * 64,
                size=12345,
                tags="py3-none-any",
            )
        )
        connection.execute(insert(events).values(serial=60, timestamp=int(now - 3600), action="x"))
        set_state(connection, POSITION, "60")
        set_state(connection, UPSTREAM_HEAD, f"100 {now - 10}")


def test_the_status_counts_queues_and_builders_and_names_none(master: Master) -> None:
    master.hello()
    master.builder().claim(Heartbeat(health=Health(load=1.0)))  # nothing queued yet: idle
    master.flush()  # the builder's last request and readings reach the store
    _queue(master, 30.0, 600.0)
    _history(master)
    (master.tree / "simple" / "index.html").write_text("x")
    status = httpx.get(master.url + "/status.json").json()
    assert status["following"] is True and status["building"] is True
    (target,) = status["targets"]
    assert target["pending"] == 2 and 599 <= target["oldest_age"] <= 601
    assert target["builders"] == {"idle": 1}
    assert status["follower"]["lag_serials"] == 40
    assert status["last_publish"] is not None
    assert "pi-1" not in httpx.get(master.url + "/status/").text + str(status)


def test_metrics_read_the_store_at_each_scrape(master: Master) -> None:
    master.hello()
    master.builder().claim(Heartbeat(health=Health(load=2.5, clock=master.clock() - 90)))
    master.flush()
    _queue(master, 30.0)
    _history(master)
    text = httpx.get(master.url + "/metrics", headers=master.admin()).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("wheelfarm_queue_length", (("target", TARGET),))] == 1
    assert samples[("wheelfarm_builds_total", (("result", "built"), ("target", TARGET)))] == 1
    assert samples[("wheelfarm_builders", (("state", "idle"), ("target", TARGET)))] == 1
    assert samples[("wheelfarm_builder_load1", (("builder", "pi-1"),))] == 2.5
    assert samples[("wheelfarm_builder_clock_skew_seconds", (("builder", "pi-1"),))] == -90
    assert samples[("wheelfarm_build_duration_seconds_bucket", (("le", "300.0"),))] == 1
    assert samples[("wheelfarm_build_duration_seconds_count", ())] == 2
    assert samples[("wheelfarm_upload_bytes_total", ())] == 12345
    assert samples[("wheelfarm_changelog_serial", ())] == 60
    assert 3599 <= samples[("wheelfarm_changelog_lag_seconds", ())] <= 3601
    _queue(master, 5.0, 6.0, first=1)  # no counter kept anywhere: the next scrape sees the store
    again = httpx.get(master.url + "/metrics", headers=master.admin()).text
    assert f'wheelfarm_queue_length{{target="{TARGET}"}} 3.0' in again


def test_metrics_can_be_made_public(engine: Engine, tmp_path: Path) -> None:
    options = MonitorOptions(public_metrics=True, tree_dir=tmp_path)
    server = start_master(engine, tmp_path, Clock(), options)
    try:
        assert httpx.get(server.url + "/metrics").status_code == 200
        assert httpx.get(server.url + "/monitor/data.json").status_code == 401
    finally:
        server.stop()


def test_a_paused_farm_hands_out_nothing_until_resumed(master: Master) -> None:
    _queue(master, 1.0)
    master.hello()
    pause = httpx.post(
        master.url + "/monitor/control", json={"action": "pause"}, headers=master.admin()
    )
    assert pause.status_code == 200
    claimed = master.builder().claim()
    assert claimed.job is None and claimed.command == "pause"
    master.flush()
    data = httpx.get(master.url + "/monitor/data.json", headers=master.admin()).json()
    assert data["farm"]["paused"] == "operator" and data["builders"][0]["state"] == "paused"
    httpx.post(master.url + "/monitor/control", json={"action": "resume"}, headers=master.admin())
    assert master.builder().claim().job is not None


def test_builder_controls_reach_the_builder(master: Master) -> None:
    master.hello()
    answer = httpx.post(
        master.url + "/monitor/control",
        json={"action": "stop", "builder": "pi-1"},
        headers=master.admin(),
    )
    assert answer.status_code == 200
    assert master.builder().claim().command == "stop"
    missing = httpx.post(
        master.url + "/monitor/control",
        json={"action": "skip", "builder": "nobody"},
        headers=master.admin(),
    )
    assert missing.status_code == 404


def test_the_master_pauses_itself_when_its_disk_runs_low_and_resumes(
    master: Master, tmp_path: Path
) -> None:
    def config(minimum: int) -> SamplerConfig:
        return SamplerConfig(tmp_path, tmp_path / "www", tmp_path / "wheels", min_free_disk=minimum)

    sample_once(master.engine, config(1 << 62), master.clock())  # more than any disk has
    with master.engine.connect() as connection:
        assert farm_paused(connection) == "disk"
    assert httpx.get(master.url + "/status.json").json()["paused"] == "disk"
    assert "low on disk space" in httpx.get(master.url + "/status/").text
    data = httpx.get(master.url + "/monitor/data.json", headers=master.admin()).json()
    assert {"source": "master", "alert": "building paused: the master's disk is low"} in data[
        "alerts"
    ]
    assert data["master"]["readings"]["data_free"] > 0  # the sample was written
    sample_once(master.engine, config(1), master.clock() + 60)  # space returned
    with master.engine.connect() as connection:
        assert farm_paused(connection) is None


def test_the_disk_never_lifts_an_operators_pause(master: Master, tmp_path: Path) -> None:
    httpx.post(master.url + "/monitor/control", json={"action": "pause"}, headers=master.admin())
    sample_once(
        master.engine, SamplerConfig(tmp_path, tmp_path, tmp_path, min_free_disk=1), master.clock()
    )
    with master.engine.connect() as connection:
        assert farm_paused(connection) == "operator"


def test_a_target_with_pending_jobs_and_no_builder_raises_an_alert(master: Master) -> None:
    _queue(master, 1.0)
    data = httpx.get(master.url + "/monitor/data.json", headers=master.admin()).json()
    assert {"source": f"target:{TARGET}", "alert": "1 pending jobs and no builder"} in data[
        "alerts"
    ]
    assert data["builders"][0]["state"] == "dead"  # registered, never heard from
