"""``wheelfarm serve``: the index server on its own, bound before it runs."""

from __future__ import annotations

import logging
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from wheelfarm.config import Settings
from wheelfarm.errors import ConfigError
from wheelfarm.stats.recorder import HitRecorder, start_recorder
from wheelfarm.store.database import open_store
from wheelfarm.web.index_app import ACCESS_LOGGER, create_index_app
from wheelfarm.web.runner import (
    bind,
    index_server_config,
)

__all__ = ["IndexServer", "open_index_server"]

log = logging.getLogger(__name__)


@dataclass
class IndexServer:
    """``wheelfarm serve``'s server, bound (a busy port fails at once) but not yet running."""

    root: Path
    url: str
    server: uvicorn.Server
    sock: socket.socket
    recorder: HitRecorder | None = None

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM, then raise that signal again for the previous handler."""
        try:
            self.server.run(sockets=[self.sock])
        finally:
            if self.recorder is not None:  # write the hits still queued
                self.recorder.stop()
                self.recorder.engine.dispose()


def open_index_server(
    settings: Settings,
    *,
    root: Path | None = None,
    host: str | None = None,
    port: int | None = None,
    access_log: bool = False,
    stats: bool = True,
) -> IndexServer:
    """The server of the published tree; what is not given comes from the settings.

    With ``stats`` its hits are recorded in the store, off the request path (docs/stats.md).
    """
    root = root if root is not None else settings.data_dir / "www"
    if not root.is_dir():
        raise ConfigError(
            "root",
            str(root),
            f"no published index there (looked from {Path.cwd()}); write one with "
            "'wheelfarm write', or point at it with --root, --data-dir, WHEELFARM_DATA_DIR "
            "or data_dir in wheelfarm.toml",
        )
    host = host if host is not None else settings.host
    port = port if port is not None else settings.port
    sock = bind(host, port)  # a busy port is a ConfigError: one line, exit status 2
    if access_log:
        _log_access_to_stderr()
    shown = f"[{host}]" if ":" in host else host
    recorder = start_recorder(open_store(settings.database_url), settings) if stats else None
    on_hit = recorder.on_hit if recorder is not None else None
    app = create_index_app(
        root, access_log=access_log, on_hit=on_hit, page_max_age=settings.page_max_age
    )
    server = uvicorn.Server(index_server_config(app))
    return IndexServer(root, f"http://{shown}:{sock.getsockname()[1]}/", server, sock, recorder)


def _log_access_to_stderr() -> None:
    """Plain 'METHOD path status' lines on standard error, one per request, for tools to read."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
