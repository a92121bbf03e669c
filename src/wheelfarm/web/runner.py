"""Run ASGI apps under uvicorn: the index's settings, and serving in a background thread.

``wheelfarm serve`` runs the index in the foreground with :func:`index_server_config`; the
master serves beside its follower, and the tests serve their trees, from a thread
(:func:`serve_index_in_thread`, :func:`serve_in_thread`). Either way the socket is bound first
(:func:`bind`), so that a busy port is a one-line error rather than a trace from inside uvicorn.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from wheelfarm.errors import ConfigError
from wheelfarm.web.asgi import ASGIApp
from wheelfarm.web.index_app import HitCallback, create_index_app
from wheelfarm.web.limits import LimitedHttpToolsProtocol

__all__ = [
    "RunningServer",
    "bind",
    "index_server_config",
    "run_in_thread",
    "serve_in_thread",
    "serve_index_in_thread",
]


@dataclass
class RunningServer:
    """A server running in a thread, at ``url``, until :meth:`stop`."""

    server: uvicorn.Server
    thread: threading.Thread
    url: str

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a busy port is a one-line error, not a trace."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ConfigError(
            "port", port, f"cannot listen on {host}:{port}: {error.strerror}"
        ) from error
    return sock


def run_in_thread(config: uvicorn.Config, sock: socket.socket, name: str) -> RunningServer:
    """Run uvicorn on a bound socket in a thread; returns once it accepts connections."""
    host, bound_port = sock.getsockname()[:2]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the {name} on {host}:{bound_port} did not start")
        time.sleep(0.02)
    shown = f"[{host}]" if ":" in host else host
    return RunningServer(server, thread, f"http://{shown}:{bound_port}")


def serve_in_thread(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Start serving; returns once the server accepts connections. Port 0 picks a free one.

    The app's lifespan runs: the builder API writes its last notes when the server stops.
    """
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="auto")
    return run_in_thread(config, bind(host, port), "uvicorn")


def index_server_config(app: ASGIApp) -> uvicorn.Config:
    """The uvicorn settings the index runs with, in ``wheelfarm serve`` and the benchmark alike.

    httptools and uvloop (dependencies) roughly double the requests per second; httptools runs
    with a cap on each request's head (:mod:`wheelfarm.web.limits`). Uvicorn's own access log is
    off; ours is the app's ``access_log``.
    """
    return uvicorn.Config(
        app,
        http=LimitedHttpToolsProtocol,
        loop="auto",
        log_level="warning",
        access_log=False,
        lifespan="auto",
        server_header=False,
        timeout_keep_alive=30,
    )


def serve_index_in_thread(
    root: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    api: ASGIApp | None = None,
    access_log: bool = False,
    on_hit: HitCallback | None = None,
    page_max_age: int = 0,
) -> RunningServer:
    """Serve the tree (and ``api``) from a background thread; returns once it accepts requests.

    Port 0 picks a free port; the URL it got is in the result.
    """
    app = create_index_app(
        root, api, access_log=access_log, on_hit=on_hit, page_max_age=page_max_age
    )
    config = index_server_config(app)
    return run_in_thread(config, bind(host, port), "index server")
