"""``wheelfarm monitor``: the dashboard in a terminal (Textual), over the master's HTTP JSON.

It reads ``/monitor/data.json`` and ``/monitor/history.json`` with an admin token, like the
dashboard, and sends the same controls. Keys: ``p`` ``r`` ``s`` ``x`` pause, resume, skip or
stop the selected builder; ``P`` ``R`` pause or resume the farm; ``q`` quits.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Label, Sparkline, Static

__all__ = ["SPARKLINES", "MonitorApp"]

#: The readings drawn for the selected builder, in this order.
SPARKLINES = ("load", "cpu_temperature", "memory_available", "disk_free_bytes", "clock_offset")
_COLUMNS = ("builder", "state", "target", "job", "for", "load", "°C", "alerts")


def _span(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _number(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


class MonitorApp(App[None]):
    """The builder list, a detail pane with sparklines, and keys for the controls."""

    TITLE = "wheelfarm monitor"
    CSS = """
    #builders { width: 3fr; }
    #detail { width: 2fr; padding: 0 1; }
    Sparkline { height: 2; margin-bottom: 1; }
    #farm { height: auto; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "builder('pause')", "pause"),
        Binding("r", "builder('resume')", "resume"),
        Binding("s", "builder('skip')", "skip"),
        Binding("x", "builder('stop')", "stop"),
        Binding("P", "farm('pause')", "pause farm"),
        Binding("R", "farm('resume')", "resume farm"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(self, master: str, token: str, *, interval: float = 5.0) -> None:
        super().__init__()
        self.master = master.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}
        self.interval = interval
        self.data: dict[str, Any] = {}
        self.selected: str | None = None
        self.message = ""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="farm")
        with Horizontal():
            yield DataTable(id="builders", cursor_type="row")
            with Vertical(id="detail"):
                yield Static("no builder selected", id="about")
                for name in SPARKLINES:
                    yield Label(name, id=f"label-{name}")
                    yield Sparkline([], id=f"spark-{name}")
        yield Footer()

    async def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*_COLUMNS)
        await self.refresh_data()
        self.set_interval(self.interval, self.refresh_data)

    async def _get(self, path: str, **params: str) -> Any:
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.get(self.master + path, params=params, headers=self.headers)
        answer.raise_for_status()
        return answer.json()

    async def refresh_data(self) -> None:
        """Read the farm again and redraw; a failure is shown, not raised."""
        try:
            self.data = await self._get("/monitor/data.json")
        except (httpx.HTTPError, ValueError) as error:
            self._show_farm(f"cannot read {self.master}: {error}")
            return
        self._show_farm()
        self._show_builders()
        await self._show_detail()

    def _show_farm(self, problem: str = "") -> None:
        paused = self.data.get("farm", {}).get("paused")
        farm = f"farm: paused ({paused})" if paused else "farm: building"
        alerts = [f"{a['source']}: {a['alert']}" for a in self.data.get("alerts", [])]
        lines = [farm, *(alerts[:5] or ["no alerts"]), self.message, problem]
        self.query_one("#farm", Static).update("\n".join(line for line in lines if line))

    def _show_builders(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for b in self.data.get("builders", []):
            r = b["readings"]
            table.add_row(
                b["name"],
                b["state"],
                b["target"] or "",
                b["job"] or "",
                _span(b["job_seconds"]),
                _number(r.get("load"), 2),
                _number(r.get("cpu_temperature"), 0),
                "; ".join(b["alerts"]),
                key=b["name"],
            )
        names = [b["name"] for b in self.data.get("builders", [])]
        if self.selected in names:
            table.move_cursor(row=names.index(self.selected))
        elif names:
            self.selected = names[0]

    async def _show_detail(self) -> None:
        builder = next(
            (b for b in self.data.get("builders", []) if b["name"] == self.selected), None
        )
        if builder is None:
            return
        about = self.query_one("#about", Static)
        about.update(
            f"{builder['name']} ({builder['state']}) {builder['label'] or ''}\n"
            f"target {builder['target']}, up {_span(builder['uptime'])}\n"
            f"job {builder['job'] or '-'} {_span(builder['job_seconds'])}"
        )
        try:
            history = await self._get("/monitor/history.json", source=f"builder:{self.selected}")
        except (httpx.HTTPError, ValueError):
            return
        for name in SPARKLINES:
            values = [p[1][name] for p in history["points"] if name in p[1]]
            self.query_one(f"#spark-{name}", Sparkline).data = values
            last = _number(values[-1], 2) if values else "no readings"
            self.query_one(f"#label-{name}", Label).update(f"{name}: {last}")

    async def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None and event.row_key.value != self.selected:
            self.selected = event.row_key.value
            await self._show_detail()

    async def _control(self, body: dict[str, str]) -> None:
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                answer = await client.post(
                    self.master + "/monitor/control", json=body, headers=self.headers
                )
            answer.raise_for_status()
            self.message = f"done: {body['action']} {body.get('builder', 'the farm')}"
        except httpx.HTTPError as error:
            self.message = f"{body['action']} failed: {error}"
        await self.refresh_data()

    async def action_builder(self, action: str) -> None:
        if self.selected is not None:
            await self._control({"action": action, "builder": self.selected})

    async def action_farm(self, action: str) -> None:
        await self._control({"action": action})
