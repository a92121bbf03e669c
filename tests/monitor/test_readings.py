"""Builders' readings: sent with heartbeats and claims, checked field by field, kept on the
master's clock."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tests.monitor.conftest import Master
from wheelfarm.builder.health import cpu_temperature, read_health
from wheelfarm.farm.readings import latest_readings
from wheelfarm.protocol import API_PREFIX, Health, Heartbeat
from wheelfarm.store.schema import jobs

NONSENSE = {
    "load": float("nan"),
    "load5": -1.0,
    "load15": 2.5,
    "cpu_temperature": float("inf"),
    "memory_total": 10**30,
    "memory_available": 4 << 30,
    "disk_free_bytes": "lots",
    "uptime": 1234.0,
}


def test_nonsense_readings_are_dropped_field_by_field_and_the_rest_kept() -> None:
    health = Health.model_validate(NONSENSE)
    assert health.load is None and health.load5 is None and health.cpu_temperature is None
    assert health.memory_total is None and health.disk_free_bytes is None
    assert (health.load15, health.memory_available, health.uptime) == (2.5, 4 << 30, 1234.0)


def test_this_machine_reads_sensible_values(tmp_path: Path) -> None:
    health = read_health(tmp_path)
    assert health.load is not None and health.memory_total and health.disk_free_bytes
    assert health.memory_available is not None and health.memory_available <= health.memory_total
    assert health.uptime is not None and health.uptime > 0
    assert health.clock is not None and abs(health.clock - time.time()) < 5


def test_thermal_zones_are_read_when_psutil_has_no_sensor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("psutil.sensors_temperatures", lambda: {}, raising=False)
    for zone, millidegrees in (("thermal_zone0", "41000\n"), ("thermal_zone1", "55500\n")):
        (tmp_path / zone).mkdir()
        (tmp_path / zone / "temp").write_text(millidegrees)
    assert cpu_temperature(tmp_path) == 55.5
    assert cpu_temperature(tmp_path / "none") is None  # no sensor at all: absent, not 0


def test_a_heartbeat_with_nonsense_keeps_the_sensible_readings(master: Master) -> None:
    build = master.claim_a_build()
    body = json.dumps({"health": NONSENSE}, allow_nan=True)  # NaN and Infinity as JSON allows
    answer = httpx.post(
        f"{master.url}{API_PREFIX}/builds/{build}/heartbeat",
        content=body,
        headers={
            "Authorization": f"Bearer {master.builder_token}",
            "Content-Type": "application/json",
        },
    )
    assert answer.status_code == 200, answer.text
    master.flush()
    with master.engine.connect() as connection:
        _, readings = latest_readings(connection)["pi-1"]
    assert readings == {"load15": 2.5, "memory_available": float(4 << 30), "uptime": 1234.0}


def test_a_builder_clock_hours_off_is_shown_and_its_lease_still_works(master: Master) -> None:
    build = master.claim_a_build()
    hours_ahead = master.clock() + 5 * 3600
    reply = master.builder().heartbeat(build, Heartbeat(health=Health(clock=hours_ahead, load=1)))
    assert reply.command == "continue"
    master.flush()
    with master.engine.connect() as connection:
        received, readings = latest_readings(connection)["pi-1"]
        lease = connection.execute(select(jobs.c.lease_expires)).scalar_one()
    assert readings["clock_offset"] == pytest.approx(5 * 3600)
    assert received == master.clock()  # the master's clock, not the builder's
    assert lease == pytest.approx(master.clock() + 300)  # leases run on the master's clock
    data = httpx.get(f"{master.url}/monitor/data.json", headers=master.admin()).json()
    (builder,) = data["builders"]
    assert any(alert.startswith("clock skew: +18000") for alert in builder["alerts"])


def test_an_idle_builder_sends_its_readings_with_each_claim(master: Master) -> None:
    master.hello()
    master.builder().claim(Heartbeat(health=Health(load=0.25, swap_total=0)))
    master.builder().claim()  # an older builder sends none: the last readings stay
    master.flush()
    with master.engine.connect() as connection:
        _, readings = latest_readings(connection)["pi-1"]
    assert readings == {"load": 0.25, "swap_total": 0.0}


def test_nan_is_not_a_finite_reading() -> None:
    assert Health(uptime=math.nan).uptime is None
    assert Health(uptime=5).uptime == 5.0
