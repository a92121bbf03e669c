"""``wheelfarm monitor`` driven headless by Textual's pilot against a real running master."""

from __future__ import annotations

import asyncio

import httpx
from textual.widgets import DataTable, Sparkline, Static

from tests.monitor.conftest import Master
from wheelfarm.farm.pause import farm_paused
from wheelfarm.farm.registry import command_of
from wheelfarm.monitor.history import record_samples
from wheelfarm.monitor.tui import MonitorApp
from wheelfarm.protocol import Health, Heartbeat


def test_the_terminal_monitor_lists_builders_and_sends_controls(master: Master) -> None:
    master.hello()
    master.builder().claim(Heartbeat(health=Health(load=1.5, clock=master.clock())))
    master.flush()
    with master.engine.begin() as connection:
        for minute, load in enumerate((0.5, 1.0, 2.0, 1.5)):
            at = master.clock() - 300 + 60 * minute
            record_samples(connection, at, {"builder:pi-1": {"load": load}})

    async def drive() -> None:
        app = MonitorApp(master.url, master.admin_token, interval=60)
        async with app.run_test() as pilot:
            await pilot.pause()
            table = app.query_one(DataTable)
            assert table.row_count == 1
            assert table.get_row_at(0)[:3] == ["pi-1", "idle", master.builder_target()]
            assert app.query_one("#spark-load", Sparkline).data == [0.5, 1.0, 2.0, 1.5]
            await pilot.press("p")  # pause the selected builder
            await pilot.press("P")  # pause the farm
            await pilot.pause()
            assert "farm: paused (operator)" in str(app.query_one("#farm", Static).render())
            await pilot.press("R")
            await pilot.press("x")  # stop the builder
            await pilot.pause()

    asyncio.run(drive())
    with master.engine.connect() as connection:
        assert farm_paused(connection) is None
        assert command_of(connection, "pi-1") == "stop"


def test_a_wrong_token_is_shown_not_raised(master: Master) -> None:
    async def drive() -> None:
        app = MonitorApp(master.url, "not-a-token", interval=60)
        async with app.run_test() as pilot:
            await pilot.pause()
            assert "401" in str(app.query_one("#farm", Static).render())

    asyncio.run(drive())
    assert httpx.get(master.url + "/monitor/data.json").status_code == 401
