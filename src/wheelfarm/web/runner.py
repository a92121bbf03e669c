"""Run an ASGI app under uvicorn in a background thread (the master serves beside its follower)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

from wheelfarm.errors import ConfigError

__all__ = ["RunningServer", "bind", "run_in_thread", "serve_in_thread"]


@dataclass
class RunningServer:
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
    """Start serving; returns once the server accepts connections. Port 0 picks a free one."""
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    return run_in_thread(config, bind(host, port), "uvicorn")
