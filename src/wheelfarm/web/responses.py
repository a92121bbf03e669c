"""The answers the index app sends: files (304, 206, 200), plain bodies, redirects, and the
security headers added to every response; kept apart so the app itself reads as routing."""

from __future__ import annotations

from wheelfarm.web.asgi import Message, Receive, Scope, Send
from wheelfarm.web.conditional import is_fresh, parse_range
from wheelfarm.web.files import FileEntry, stream_file
from wheelfarm.web.headers import accepts_gzip

__all__ = [
    "accepts_gzip_of",
    "base_url",
    "lifespan",
    "plain",
    "read_bytes",
    "redirect",
    "secured",
    "send_entry",
]


def secured(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    """``send`` with the security headers (:mod:`wheelfarm.web.security`) on the response."""

    async def with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *extra]}
        await send(message)

    return with_headers


def read_bytes(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def base_url(scope: Scope) -> str:
    """This server's address as the client reached it (behind nginx: its Host and scheme)."""
    host, scheme = "", scope.get("scheme", "http")
    for key, value in scope["headers"]:
        if key == b"host":
            host = value.decode("latin-1")
        elif key == b"x-forwarded-proto":
            scheme = value.decode("latin-1").split(",")[0].strip()
    if not host:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scheme}://{host}"


def accepts_gzip_of(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"accept-encoding":
            return accepts_gzip(value)
    return False


async def send_entry(scope: Scope, send: Send, entry: FileEntry, full: str, *, ranged: bool) -> int:
    """Answer with a file: 304 if the client's copy is current, 206 for one range, else 200."""
    if_none_match = if_modified_since = range_header = if_range = None
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            if_none_match = value
        elif name == b"if-modified-since":
            if_modified_since = value
        elif name == b"range":
            range_header = value
        elif name == b"if-range":
            if_range = value
    if is_fresh(if_none_match, if_modified_since, entry.etag, entry.mtime):
        await send({"type": "http.response.start", "status": 304, "headers": entry.headers_304})
        await send({"type": "http.response.body", "body": b""})
        return 304
    head = scope["method"] == "HEAD"
    span = None
    if ranged and range_header is not None and (if_range is None or if_range == entry.etag):
        span = parse_range(range_header, entry.size)
    if span is False:
        headers = [(b"content-range", f"bytes */{entry.size}".encode())]
        return await plain(send, 416, b"Range not satisfiable\n", headers)
    if span is not None:
        first, last = span
        headers = [(k, v) for k, v in entry.headers_200 if k != b"content-length"] + [
            (b"content-length", str(last - first + 1).encode()),
            (b"content-range", f"bytes {first}-{last}/{entry.size}".encode()),
        ]
        await send({"type": "http.response.start", "status": 206, "headers": headers})
        if head:
            await send({"type": "http.response.body", "body": b""})
        elif entry.body is not None:
            await send({"type": "http.response.body", "body": entry.body[first : last + 1]})
        else:
            await stream_file(send, full, first, last + 1)
        return 206
    await send({"type": "http.response.start", "status": 200, "headers": entry.headers_200})
    if head:
        await send({"type": "http.response.body", "body": b""})
    elif entry.body is not None:
        await send({"type": "http.response.body", "body": entry.body})
    else:
        await stream_file(send, full, 0, entry.size)
    return 200


async def plain(
    send: Send,
    status: int,
    body: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
    *,
    content_type: bytes = b"text/plain; charset=utf-8",
) -> int:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    headers.extend(extra or ())
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return status


async def redirect(scope: Scope, send: Send, location: str) -> int:
    """301 to a path on this server, keeping the query string (``?format=`` must survive)."""
    query: bytes = scope.get("query_string", b"")
    target = location.encode("utf-8") + (b"?" + query if query else b"")
    body = b"Moved to " + target + b"\n"
    return await plain(send, 301, body, [(b"location", target)])


async def lifespan(receive: Receive, send: Send) -> None:
    """Nothing to start or stop; answer the server's lifespan messages so it does not wait."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
