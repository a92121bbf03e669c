"""ASGI's types, named once: the app, its file sending and the tests' stand-in API share them.

The index app is a raw ASGI callable (see :mod:`wheelfarm.web.index_app` for why), so these
plain aliases stand where a framework's request and response classes would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
