"""The monitor's HTML: the sign-in form, the dashboard's shell and the public status page.

No asset comes from elsewhere: the dashboard's script (``static/dashboard.js``) polls
``data.json`` and ``history.json`` and draws its graphs as SVG.
"""

from __future__ import annotations

import time
from html import escape
from importlib.resources import files
from typing import Any

__all__ = ["SCRIPT", "dashboard", "sign_in", "status"]

SCRIPT = (files("wheelfarm.monitor") / "static" / "dashboard.js").read_text(encoding="utf-8")

_STYLE = """
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.2em .6em;border-bottom:1px solid #ddd;
text-align:left}tr.alert td{background:#fde2e1}.alerts li{color:#a40000;font-weight:600}
.state-dead,.state-silent{color:#a40000}.state-building,.state-uploading{color:#0a5}
.graphs{display:flex;flex-wrap:wrap;gap:1em}.graph{border:1px solid #ccc;padding:.3em}
.graph svg{display:block}button{margin:0 .1em}.banner{background:#fff3cd;padding:.5em}
"""


def _page(title: str, body: str) -> str:
    return (
        f"<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
        f"<meta name=viewport content='width=device-width'><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def sign_in(problem: str = "") -> str:
    """The form an admin signs in with (answered with 401 to anyone not signed in)."""
    shown = f"<p class=alerts><b>{escape(problem)}</b></p>" if problem else ""
    return _page(
        "wheelfarm monitor: sign in",
        "<h1>wheelfarm monitor</h1><p>An admin token is required (<code>wheelfarm admins add"
        " NAME</code>; <code>up</code> leaves one in <code>&lt;data_dir&gt;/admin-token</code>)."
        f"</p>{shown}<form method=post action=/monitor/login><label>Admin token "
        "<input type=password name=token autocomplete=off required></label> "
        "<button type=submit>Sign in</button></form>",
    )


def dashboard(admin: str, csrf: str) -> str:
    """The dashboard's shell: its script fills it from ``data.json`` and keeps it current."""
    return _page(
        "wheelfarm monitor",
        f"<h1>wheelfarm monitor</h1><p>Signed in as {escape(admin)}. "
        "<form method=post action=/monitor/logout style=display:inline>"
        "<button>Sign out</button></form></p>"
        f"<input type=hidden id=csrf value='{escape(csrf)}'>"
        "<div id=farm></div><h2>Alerts</h2><ul id=alerts class=alerts></ul>"
        "<h2>Master</h2><div id=master></div><h2>Targets</h2><div id=targets></div>"
        "<h2>Builders</h2><div id=builders></div>"
        "<h2>Graphs of <span id=source>master</span></h2><p>"
        "<select id=range><option>hour</option><option>day</option><option>week</option>"
        "</select> <span id=updated></span></p><div id=graphs class=graphs></div>"
        "<script src=/monitor/dashboard.js></script>",
    )


def _when(stamp: float | None, now: float) -> str:
    if stamp is None:
        return "never"
    return f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(stamp))} ({now - stamp:.0f} s ago)"


def _target_row(target: dict[str, Any]) -> str:
    age = target["oldest_age"]
    counts = ", ".join(f"{n} {state}" for state, n in sorted(target["builders"].items()))
    return (
        f"<tr><td>{escape(target['name'])}</td><td>{target['pending']}</td>"
        f"<td>{'' if age is None else f'{age / 60:.0f} min'}</td>"
        f"<td>{escape(counts or 'none')}</td></tr>"
    )


def status(report: dict[str, Any]) -> str:
    """The public status page (the same values as ``/status.json``)."""
    now = report["now"]
    follower = report["follower"]
    paused = report["paused"]
    why = "the master is low on disk space" if paused == "disk" else "by an operator"
    banner = f"<p class=banner id=paused>Building is paused ({why}).</p>" if paused else ""
    rows = "".join(_target_row(target) for target in report["targets"])
    lag = follower.get("lag_serials")
    return _page(
        "wheelfarm status",
        f"<h1>wheelfarm status</h1>{banner}<ul>"
        f"<li id=following>Following the upstream: {'yes' if report['following'] else 'no'}"
        f" (last asked {_when(report['upstream_checked_at'], now)})</li>"
        f"<li id=building>Building: {'yes' if report['building'] else 'no'}</li>"
        f"<li>Changelog serial {follower['changelog_serial']}"
        f"{'' if lag is None else f', {lag:.0f} behind'}</li>"
        f"<li>Last publish: {_when(report['last_publish'], now)}</li></ul>"
        "<table><tr><th>target</th><th>pending</th><th>oldest</th><th>builders</th></tr>"
        f"{rows}</table><p><a href=/status.json>as JSON</a></p>",
    )
