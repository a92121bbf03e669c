"""Serving: simple pages per second under wrk, from wheelfarm and from what users run instead.

One tree (benchmarks/serve_index.py's: projects of 12 wheels, pages of a few KB) is served at
once by every contender, each in its own process(es), and wrk loads one at a time, round by
round: ``wheelfarm serve``; nginx running docs/nginx.conf (the limit: C, sendfile, every core);
Starlette's ``StaticFiles(html=True)`` under uvicorn and ``python -m http.server`` (what a
Python developer would write in an afternoon); pypiserver over the same wheels with its cached
directory backend, once hashing (its default, sha256 of every wheel) and once with hashing off
(its best case); devpi-server mirroring ``wheelfarm serve`` (benchmarks/suite/devpi.py), warmed
once per project, so that it answers from its own store. wheelfarm answers pip's Accept header
with the JSON page; the static servers answer with the HTML page of the same files.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.publish.servers import NJS_MODULE, free_port, start_nginx

from benchmarks.serve_index import stop, wait_for, write_trees, wrk, wrk_script
from benchmarks.suite.devpi import MIRROR_PREFIX, devpi_mirror
from benchmarks.suite.measure import Measurement, NotMeasured, interleave, not_measured
from benchmarks.suite.tools import debian_file, debian_tool, tool_venv

__all__ = ["ServingSize", "measure_serving"]

AREA = "serving"
DEVPI = "devpi-server (mirror of it)"
PREFIXES = {DEVPI: MIRROR_PREFIX}  # where a server's simple pages are, when not /simple/
UNIT = "req/s"
STARLETTE_APP = '''\
"""StaticFiles over the tree named by $BENCH_WWW: what a Python developer would write."""
import os

from starlette.staticfiles import StaticFiles

app = StaticFiles(directory=os.environ["BENCH_WWW"], html=True)
'''


@dataclass(frozen=True)
class ServingSize:
    projects: int
    seconds: int
    rounds: int


@contextmanager
def _process(command: list[str], what: str, env: dict[str, str] | None = None) -> Iterator[int]:
    """Start a server listening on a fresh loopback port (``{port}`` in ``command``)."""
    port = free_port()
    argv = [part.replace("{port}", str(port)) for part in command]
    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env or dict(os.environ)
    )
    try:
        try:
            wait_for(port, process, what)
        except SystemExit as error:
            raise NotMeasured(str(error)) from error
        yield port
    finally:
        stop(process)


def _loader(port: int, script: Path, seconds: int, prefix: str) -> Callable[[], float]:
    if prefix != "/simple/":  # the same rotation over the projects, under another path
        text = script.read_text().replace('"/simple/"', f'"{prefix}"')
        script = script.with_name(f"rotate-{port}.lua")
        script.write_text(text)

    def load() -> float:
        url = f"http://127.0.0.1:{port}{prefix}project-0000/"
        try:
            return wrk(port, script, seconds, url)
        except SystemExit as error:  # the script's way of saying what went wrong
            raise NotMeasured(str(error).splitlines()[0]) from error

    return load


def _start_all(
    stack: ExitStack, base: Path, www: Path, packages: Path, names: list[str]
) -> dict[str, int | str]:
    """Every contender's port, or the reason it could not start."""
    python = sys.executable
    wheelfarm_env = {**os.environ, "WHEELFARM_UPSTREAM": "https://index.example.org/simple/",
                     "WHEELFARM_CONFIG": os.devnull}  # fmt: skip
    app_dir = base / "starlette-app"
    app_dir.mkdir()
    (app_dir / "static_app.py").write_text(STARLETTE_APP)
    starters: dict[str, Callable[[], int]] = {
        "wheelfarm serve": lambda: stack.enter_context(
            _process([python, "-m", "wheelfarm", "serve", "--root", str(www), "--port", "{port}"],
                     "wheelfarm serve", wheelfarm_env)),
        "nginx": lambda: _nginx(stack, base, www),
        "Starlette StaticFiles": lambda: stack.enter_context(
            _process([python, "-m", "uvicorn", "--app-dir", str(app_dir), "--port", "{port}",
                      "--no-access-log", "--log-level", "warning", "static_app:app"],
                     "uvicorn", {**os.environ, "BENCH_WWW": str(www)})),
        "python -m http.server": lambda: stack.enter_context(
            _process([python, "-m", "http.server", "--bind", "127.0.0.1", "--directory",
                      str(www), "{port}"], "http.server")),
        "pypiserver (hashing)": lambda: stack.enter_context(
            _process(_pypiserver(packages, "sha256"), "pypi-server")),
        "pypiserver (no hashing)": lambda: stack.enter_context(
            _process(_pypiserver(packages, "off"), "pypi-server")),
    }  # fmt: skip
    ports: dict[str, int | str] = {}

    def devpi() -> int:
        wheelfarm = ports["wheelfarm serve"]
        if not isinstance(wheelfarm, int):
            raise NotMeasured("its upstream, wheelfarm serve, did not start")
        upstream = f"http://127.0.0.1:{wheelfarm}/simple/"
        return stack.enter_context(devpi_mirror(base, upstream, names))

    starters[DEVPI] = devpi
    for name, start in starters.items():
        try:
            ports[name] = start()
        except NotMeasured as why:
            ports[name] = str(why)
    return ports


def _add_root_index(www: Path, names: list[str]) -> None:
    """The /simple/ list every published tree has (serve_index.py's tree has none), which
    devpi's mirror reads to learn which projects exist."""
    links = "".join(f'<a href="{name}/">{name}</a>\n' for name in names)
    page = f"<!DOCTYPE html>\n<html><body>\n{links}</body></html>\n"
    (www / "simple" / "index.html").write_text(page)
    projects = ", ".join(f'{{"name": "{name}"}}' for name in names)
    (www / "simple" / "index.json").write_text(
        f'{{"meta": {{"api-version": "1.1"}}, "projects": [{projects}]}}\n'
    )


def _nginx(stack: ExitStack, base: Path, www: Path) -> int:
    debian_tool("nginx", "nginx")
    debian_file(NJS_MODULE, "libnginx-mod-http-js")  # docs/nginx.conf's serial header
    server = start_nginx(base / "nginx", www, free_port(), workers="auto", access_log=False)
    stack.callback(server.stop)
    return int(server.url.rsplit(":", 1)[1])


def _pypiserver(packages: Path, hashing: str) -> list[str]:
    bin_dir = tool_venv("pypiserver", ["pypiserver[cache]", "waitress"])
    return [str(bin_dir / "pypi-server"), "run", "--host", "127.0.0.1", "--port", "{port}",
            "--server", "auto",  # bottle picks waitress, installed beside it
            "--backend", "cached-dir", "--hash-algo", hashing,
            "--disable-fallback", "--log-stream", "none", str(packages)]  # fmt: skip


def measure_serving(size: ServingSize) -> list[Measurement]:
    """wheelfarm's server against each of the others, interleaved under wrk."""
    figure = f"simple pages, {size.projects:,} projects, wrk: 64 connections, {size.seconds} s"
    try:
        debian_tool("wrk", "wrk")
    except NotMeasured as why:
        return [not_measured(AREA, figure, UNIT, "nginx and the others", str(why))]
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as temp, ExitStack() as stack:
        base = Path(temp)
        www, packages, names = write_trees(base, size.projects)
        _add_root_index(www, names)
        script = base / "rotate.lua"
        wrk_script(script, names)
        ports = _start_all(stack, base, www, packages, names)

        def unavailable(reason: str) -> Callable[[], float]:
            def refuse() -> float:
                raise NotMeasured(reason)

            return refuse

        contenders = {
            name: _loader(port, script, size.seconds, PREFIXES.get(name, "/simple/"))
            if isinstance(port, int)
            else unavailable(port)
            for name, port in ports.items()
        }
        race = interleave(size.rounds, contenders)
    rows = [
        race.row(AREA, figure, UNIT, "wheelfarm serve", rival)
        for rival in contenders
        if rival != "wheelfarm serve"
    ]
    return rows
