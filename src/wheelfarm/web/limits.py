"""Limits on what a client may make the server hold before its request even reaches the app.

uvicorn's httptools protocol keeps feeding the parser, which keeps the URL and each header
value it has seen so far in memory: one connection sending an endless header (300 MiB) grew
the master from 151 to 531 MB for good. uvicorn offers a limit for its h11 protocol only, so
this subclass counts the bytes of each request's head (request line and headers) and answers
431 (or 414 for a long URL) and closes the connection as soon as a limit is passed. Bodies are
not counted here: the builder API bounds its uploads itself.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["MAX_REQUEST_HEAD_BYTES", "MAX_URL_BYTES", "LimitedHttpToolsProtocol"]

MAX_REQUEST_HEAD_BYTES = 64 * 1024
"""The most a request line plus its headers may take (nginx allows 4 buffers of 8 KiB)."""

MAX_URL_BYTES = 8 * 1024
"""The longest request target (nginx's default buffer for one request line is 8 KiB)."""

_REFUSALS = {
    414: b"HTTP/1.1 414 URI Too Long\r\n",
    431: b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
}


class _Refused(Exception):
    """Raised in a parser callback to stop parsing a request that passed a limit."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a cap on each request's head and URL.

    Two counts, for the two ways a head arrives: the bytes received while the head is
    incomplete (an endless header never completes, and the parser keeps it all), and the sizes
    of the URL and headers the parser hands over (a whole oversized head in one read).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._parsed_bytes = 0
        self._refusal: tuple[int, str] | None = None

    def data_received(self, data: bytes) -> None:
        """Feed the parser, then refuse the request if its head is still growing past a limit."""
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > MAX_REQUEST_HEAD_BYTES:
            self._refuse(431, f"the request's headers are over {MAX_REQUEST_HEAD_BYTES} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._parsed_bytes = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_URL_BYTES:
            self._stop(414, f"the request target is over {MAX_URL_BYTES} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._parsed_bytes += len(name) + len(value) + 4
        if len(self.url) + self._parsed_bytes > MAX_REQUEST_HEAD_BYTES:
            self._stop(431, f"the request's headers are over {MAX_REQUEST_HEAD_BYTES} bytes")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True

    def send_400_response(self, msg: str) -> None:
        """uvicorn answers a parser error with 400; a limit we stopped the parser for is ours."""
        if self._refusal is None:
            super().send_400_response(msg)
            return
        status, message = self._refusal
        self._refuse(status, message)

    def _stop(self, status: int, message: str) -> None:
        self._refusal = (status, message)
        raise _Refused(message)  # httptools stops parsing; uvicorn calls send_400_response

    def _refuse(self, status: int, message: str) -> None:
        if self.transport.is_closing():
            return
        body = message.encode("ascii")
        head = [_REFUSALS[status]]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head.append(b"content-type: text/plain; charset=utf-8\r\n")
        head.append(b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        self.logger.warning("refused a request from %s: %s", self.client, message)
        self.transport.write(b"".join(head) + body)
        self.transport.close()
        self.url = b""  # what the parser kept goes with the connection
        self.headers = []
