"""The old import path of the index server, kept for the test helpers that still use it.

``wheelfarm.web.app`` once held the whole server. It is now split by role: the ASGI app in
:mod:`wheelfarm.web.index_app`, header parsing in :mod:`wheelfarm.web.conditional`, files and
their cache in :mod:`wheelfarm.web.files`, uvicorn in :mod:`wheelfarm.web.runner`, ASGI's types
in :mod:`wheelfarm.web.asgi`. wheelfarm itself imports from those. Shared test helpers of
another package (tests/publish/conftest.py, published.py, test_clients.py) still import from
here; once their import lines name the modules above, this module can go.
"""

from __future__ import annotations

from wheelfarm.web.asgi import ASGIApp, Message, Receive, Scope, Send
from wheelfarm.web.files import CONTENT_TYPES
from wheelfarm.web.index_app import ACCESS_LOGGER, IndexApp, create_index_app
from wheelfarm.web.negotiation import HTML, JSON, V1_HTML, negotiate
from wheelfarm.web.runner import index_server_config, serve_index_in_thread

__all__ = [
    "ACCESS_LOGGER",
    "CONTENT_TYPES",
    "HTML",
    "JSON",
    "V1_HTML",
    "ASGIApp",
    "IndexApp",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "create_index_app",
    "index_server_config",
    "negotiate",
    "serve_index_in_thread",
]
