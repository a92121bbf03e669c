"""Serve the published tree over HTTP: a small, fast ASGI app with the index's own rules.

The tree is static, so a plain file server would nearly do. What it would not do is what
installers rely on: PEP 691 content negotiation on ``/simple/`` (one URL, HTML or JSON by the
``Accept`` header or ``?format=``), ``Vary: Accept`` so caches keep the variants apart, 301s to
the normalised name (PEP 503), and conditional requests so a re-resolving pip gets 304s.

It is a raw ASGI callable rather than a Starlette application because it sits on the hot path of
every ``pip install``: routing is a few string tests, and files up to 1 MiB are kept in memory
with their response headers precomputed, checked against one ``os.stat`` per request. An edit
of the tree shows at once (size, mtime or inode changes), with no invalidation to arrange.

``docs/nginx.conf`` implements the same behaviour for nginx; ``docs/serving.md`` explains both.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import anyio.to_thread
import uvicorn
from packaging.utils import canonicalize_name

from wheelfarm.web.negotiation import HTML, JSON, V1_HTML, VARIANTS, negotiate
from wheelfarm.web.runner import RunningServer, bind, run_in_thread

__all__ = [
    "ACCESS_LOGGER",
    "CONTENT_TYPES",
    "HTML",
    "JSON",
    "V1_HTML",
    "IndexApp",
    "create_index_app",
    "index_server_config",
    "negotiate",
    "serve_index_in_thread",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ACCESS_LOGGER = "wheelfarm.web.access"

# Content types by file ending; docs/nginx.conf lists the same in its `types` block.
CONTENT_TYPES: dict[str, str] = {
    "html": "text/html; charset=utf-8",
    "json": "application/json",
    "xml": "application/xml",
    "txt": "text/plain; charset=utf-8",
    "metadata": "text/plain; charset=utf-8",  # a wheel's METADATA file (PEP 658): UTF-8 text
    "whl": "application/octet-stream",
    "svg": "image/svg+xml",
    "css": "text/css; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "png": "image/png",
    "ico": "image/x-icon",
    "woff2": "font/woff2",
}
DEFAULT_TYPE = "application/octet-stream"

# API paths handed to the ``api`` app when one is given (the builder API and its docs).
API_PREFIXES = ("/api/", "/docs", "/openapi.json", "/redoc")

SMALL_FILE = 1 << 20  # kept in memory up to this size
CACHE_BYTES = 256 << 20  # and up to this much in all
CHUNK = 256 << 10  # larger files are streamed in pieces of this size

_NOT_ACCEPTABLE = b"Not acceptable: this page is offered as PEP 691 JSON or HTML\n"
_BUILTIN_404 = b"<!DOCTYPE html>\n<title>Not found</title>\n<h1>Not found</h1>\n"

log = logging.getLogger(__name__)
access = logging.getLogger(ACCESS_LOGGER)


# --- files and their cached responses --------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    """One file as served: its identity on disk, its body when small, its response headers."""

    identity: tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns
    size: int
    etag: bytes
    mtime: int  # whole seconds, as Last-Modified shows it
    body: bytes | None  # None: too large to keep, streamed from disk
    headers_200: list[tuple[bytes, bytes]]
    headers_304: list[tuple[bytes, bytes]]


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _content_type(path: str) -> bytes:
    name = path.rpartition("/")[2]
    ending = name.rpartition(".")[2].lower() if "." in name else ""
    return CONTENT_TYPES.get(ending, DEFAULT_TYPE).encode()


def _etag_matches(header: bytes, etag: bytes) -> bool:
    """If-None-Match uses the weak comparison: ``W/`` is ignored, ``*`` matches anything."""
    if header.strip() == b"*":
        return True
    bare = etag.removeprefix(b"W/")
    return any(tag.strip().removeprefix(b"W/") == bare for tag in header.split(b","))


def _not_modified_since(header: bytes, mtime: int) -> bool:
    try:
        since = parsedate_to_datetime(header.decode("latin-1")).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return False
    return mtime <= since


def _parse_range(header: bytes, size: int) -> tuple[int, int] | bool | None:
    """One ``bytes=`` range as (first, last); None to send it all; False if unsatisfiable.

    Several ranges in one request (multipart answers) are rare for wheels: those get the whole
    file, which HTTP allows.
    """
    text = header.decode("latin-1").strip()
    if not text.lower().startswith("bytes=") or "," in text:
        return None
    first_text, dash, last_text = text[6:].strip().partition("-")
    if not dash:
        return None
    try:
        if not first_text:  # the last N bytes
            suffix = int(last_text)
            if suffix <= 0:
                return False
            return (max(size - suffix, 0), size - 1)
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        return None
    if first >= size:
        return False
    if first > last:
        return None
    return (first, min(last, size - 1))


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _read_piece(path: str, offset: int, length: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read(length)


class IndexApp:
    """The ASGI callable; see :func:`create_index_app`."""

    def __init__(self, root: Path, api: ASGIApp | None, access_log: bool) -> None:
        self.root = os.path.realpath(root)
        self.api = api
        self.access_log = access_log
        self._cache: dict[tuple[str, bytes | None], _Entry] = {}
        self._cached_bytes = 0
        self._negotiated: dict[str, str | None] = {}

    # The entry point: dispatch, log, and never let a bad request crash the server.
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if self.api is not None:
                await self.api(scope, receive, send)
            elif kind == "lifespan":
                await _lifespan(receive, send)
            return
        path: str = scope["path"]
        if self.api is not None and (path == "/api" or path.startswith(API_PREFIXES)):
            if not self.access_log:
                await self.api(scope, receive, send)
                return
            status = 500

            async def logged(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await self.api(scope, receive, logged)
            finally:
                self._log(scope, status)
            return
        status = await self._handle(scope, send)
        if self.access_log:
            self._log(scope, status)

    def _log(self, scope: Scope, status: int) -> None:
        target = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        shown = target.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        access.info("%s %s %d", scope["method"], shown, status)

    async def _handle(self, scope: Scope, send: Send) -> int:
        method: str = scope["method"]
        path: str = scope["path"]
        if method not in ("GET", "HEAD"):
            return await _plain(send, 405, b"Method not allowed\n", [(b"allow", b"GET, HEAD")])
        if "\x00" in path:
            return await _plain(send, 400, b"Bad request\n")
        if not path.startswith("/") or "\\" in path:
            return await self._not_found(scope, send)
        parts = path[1:].split("/")
        if any(p in ("..", ".") for p in parts) or "" in parts[:-1]:
            return await self._not_found(scope, send)
        head = parts[0]
        if head == "simple":
            return await self._simple(scope, send, parts)
        if head == "project" and len(parts) >= 2:
            canonical = canonicalize_name(parts[1])
            if parts[1] != canonical:
                rest = "/".join(parts[2:])
                return await _redirect(scope, send, f"/project/{canonical}/{rest}")
        return await self._static(scope, send, "/".join(parts))

    async def _simple(self, scope: Scope, send: Send, parts: list[str]) -> int:
        """``/simple/`` and ``/simple/<name>/``: negotiated; other spellings: redirected."""
        if len(parts) == 1:  # /simple
            return await _redirect(scope, send, "/simple/")
        name = parts[1]
        if len(parts) == 2 and name in ("", "index.html", "index.json"):
            if name == "":
                return await self._negotiated_page(scope, send, "simple")
            return await self._static(scope, send, f"simple/{name}")
        canonical = canonicalize_name(name)
        if canonical != name:
            rest = "/".join(parts[2:])
            return await _redirect(scope, send, f"/simple/{canonical}/{rest}")
        if len(parts) == 2:  # /simple/<name>
            return await _redirect(scope, send, f"/simple/{name}/")
        if len(parts) == 3 and parts[2] == "":
            return await self._negotiated_page(scope, send, f"simple/{name}")
        return await self._static(scope, send, "/".join(parts))

    async def _negotiated_page(self, scope: Scope, send: Send, directory: str) -> int:
        accept: str | None = None
        for key, value in scope["headers"]:
            if key == b"accept":
                accept = value.decode("latin-1")
                break
        query: bytes = scope.get("query_string", b"")
        if b"format=" in query:
            for key, value in parse_qsl(query.decode("latin-1")):
                if key == "format" and value:
                    accept = value.replace(" ", "+")  # an unencoded '+' arrives as a space
                    break
        cache_key = accept or ""
        variant = self._negotiated.get(cache_key, "")
        if variant == "":
            variant = negotiate(accept)
            if len(self._negotiated) < 1024:
                self._negotiated[cache_key] = variant
        if variant is None:
            return await _plain(send, 406, _NOT_ACCEPTABLE, [(b"vary", b"Accept")])
        _, filename, content_type = VARIANTS[variant]
        return await self._static(
            scope, send, f"{directory}/{filename}", content_type=content_type, vary=True
        )

    async def _static(
        self,
        scope: Scope,
        send: Send,
        relative: str,
        *,
        content_type: bytes | None = None,
        vary: bool = False,
    ) -> int:
        """A file of the tree, a directory's index, or a redirect to the directory's URL."""
        full = f"{self.root}/{relative}" if relative else self.root
        try:
            st = os.stat(full)
        except (OSError, ValueError):
            return await self._not_found(scope, send)
        if stat.S_ISDIR(st.st_mode):
            if relative and not relative.endswith("/"):
                return await _redirect(scope, send, f"/{relative}/")
            for index in ("index.html", "index.json"):
                found = await self._static_file(scope, send, relative + index, None, False)
                if found is not None:
                    return found
            return await self._not_found(scope, send)  # never a listing
        found = await self._static_file(scope, send, relative, content_type, vary, st)
        if found is None:
            return await self._not_found(scope, send)
        return found

    async def _static_file(
        self,
        scope: Scope,
        send: Send,
        relative: str,
        content_type: bytes | None,
        vary: bool,
        st: os.stat_result | None = None,
    ) -> int | None:
        """Send one regular file (None when there is none to send: the caller answers 404)."""
        full = f"{self.root}/{relative}"
        if st is None:
            try:
                st = os.stat(full)
            except (OSError, ValueError):
                return None
        if not stat.S_ISREG(st.st_mode):
            return None
        key = (relative, content_type)
        entry = self._cache.get(key)
        if entry is None or entry.identity != _identity(st):
            entry = await self._load(full, st, content_type or _content_type(relative), vary)
            if entry is None:
                return None
            if entry.body is not None:
                self._remember(key, entry)
        return await self._send_entry(scope, send, entry, full, ranged=not vary)

    async def _load(
        self, full: str, st: os.stat_result, content_type: bytes, vary: bool
    ) -> _Entry | None:
        """Build a file's entry; None when a symlink is on its way (nginx refuses those too)."""
        if os.path.realpath(full) != full:  # the root is resolved, the rest has no . or ..
            return None
        body: bytes | None = None
        if st.st_size <= SMALL_FILE:
            try:
                body = await anyio.to_thread.run_sync(_read, full)
            except OSError:
                return None
            try:
                st = os.stat(full)  # what was read may be newer than what was first seen
            except OSError:
                return None
            if st.st_size != len(body):
                return None
        etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'.encode()
        mtime = int(st.st_mtime)
        validators = [
            (b"etag", etag),
            (b"last-modified", formatdate(mtime, usegmt=True).encode()),
        ]
        if vary:
            validators.append((b"vary", b"Accept"))
        headers_200 = [
            (b"content-type", content_type),
            (b"content-length", str(st.st_size).encode()),
            *validators,
        ]
        if not vary:
            headers_200.append((b"accept-ranges", b"bytes"))
        return _Entry(_identity(st), st.st_size, etag, mtime, body, headers_200, validators)

    def _remember(self, key: tuple[str, bytes | None], entry: _Entry) -> None:
        """Keep a small file's entry, dropping the oldest ones past the memory budget."""
        assert entry.body is not None
        old = self._cache.pop(key, None)
        if old is not None and old.body is not None:
            self._cached_bytes -= len(old.body)
        while self._cache and self._cached_bytes + len(entry.body) > CACHE_BYTES:
            dropped = self._cache.pop(next(iter(self._cache)))
            self._cached_bytes -= len(dropped.body or b"")
        self._cache[key] = entry
        self._cached_bytes += len(entry.body)

    async def _send_entry(
        self, scope: Scope, send: Send, entry: _Entry, full: str, *, ranged: bool
    ) -> int:
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
        if if_none_match is not None:
            fresh = _etag_matches(if_none_match, entry.etag)
        else:
            fresh = if_modified_since is not None and _not_modified_since(
                if_modified_since, entry.mtime
            )
        if fresh:
            await send({"type": "http.response.start", "status": 304, "headers": entry.headers_304})
            await send({"type": "http.response.body", "body": b""})
            return 304
        head = scope["method"] == "HEAD"
        span = None
        if ranged and range_header is not None and (if_range is None or if_range == entry.etag):
            span = _parse_range(range_header, entry.size)
        if span is False:
            headers = [(b"content-range", f"bytes */{entry.size}".encode())]
            return await _plain(send, 416, b"Range not satisfiable\n", headers)
        if isinstance(span, tuple):
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
                await _stream(send, full, first, last + 1)
            return 206
        await send({"type": "http.response.start", "status": 200, "headers": entry.headers_200})
        if head:
            await send({"type": "http.response.body", "body": b""})
        elif entry.body is not None:
            await send({"type": "http.response.body", "body": entry.body})
        else:
            await _stream(send, full, 0, entry.size)
        return 200

    async def _not_found(self, scope: Scope, send: Send) -> int:
        """The tree's own 404.html when it has one, with status 404 all the same."""
        page = f"{self.root}/404.html"
        try:
            st = os.stat(page)
            entry = self._cache.get(("404.html", None))
            if entry is None or entry.identity != _identity(st):
                entry = await self._load(page, st, CONTENT_TYPES["html"].encode(), False)
                if entry is not None and entry.body is not None:
                    self._remember(("404.html", None), entry)
            body = entry.body if entry is not None and entry.body is not None else _BUILTIN_404
        except OSError:
            body = _BUILTIN_404
        if scope["method"] == "HEAD":
            headers = [
                (b"content-type", CONTENT_TYPES["html"].encode()),
                (b"content-length", str(len(body)).encode()),
            ]
            await send({"type": "http.response.start", "status": 404, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return 404
        return await _plain(send, 404, body, content_type=CONTENT_TYPES["html"].encode())


async def _stream(send: Send, full: str, start: int, end: int) -> None:
    """Send bytes [start, end) of a large file, reading each piece in a worker thread."""
    offset = start
    while offset < end:
        length = min(CHUNK, end - offset)
        piece = await anyio.to_thread.run_sync(_read_piece, full, offset, length)
        if not piece:  # the file shrank under us: end the response short
            break
        offset += len(piece)
        more = offset < end
        await send({"type": "http.response.body", "body": piece, "more_body": more})
        if not more:
            return
    await send({"type": "http.response.body", "body": b""})


async def _plain(
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


async def _redirect(scope: Scope, send: Send, location: str) -> int:
    """301 to a path on this server, keeping the query string (``?format=`` must survive)."""
    query: bytes = scope.get("query_string", b"")
    target = location.encode("utf-8") + (b"?" + query if query else b"")
    body = b"Moved to " + target + b"\n"
    return await _plain(send, 301, body, [(b"location", target)])


async def _lifespan(receive: Receive, send: Send) -> None:
    """Nothing to start or stop; answer the server's lifespan messages so it does not wait."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_index_app(
    root: Path, api: ASGIApp | None = None, *, access_log: bool = False
) -> IndexApp:
    """The ASGI app serving the published tree at ``root``.

    ``api``, when given, answers ``/api/...``, ``/docs``, ``/openapi.json`` and ``/redoc`` (the
    builder API), so one server on one port can serve both; it also receives lifespan events.
    ``access_log`` logs ``METHOD path status`` for each request to the ``wheelfarm.web.access``
    logger at INFO: what was fetched (``.metadata`` files, say) can then be checked.
    """
    return IndexApp(root, api, access_log)


# --- running it ------------------------------------------------------------------------------


def index_server_config(app: ASGIApp) -> uvicorn.Config:
    """The uvicorn settings the index runs with, in ``wheelfarm serve`` and the benchmark alike.

    httptools and uvloop are used when installed (they are dependencies): they roughly double
    the requests per second. Uvicorn's own access log is off; ours is the app's ``access_log``.
    """
    return uvicorn.Config(
        app,
        http="auto",
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
) -> RunningServer:
    """Serve the tree (and ``api``) from a background thread; returns once it accepts requests.

    Port 0 picks a free port; the URL it got is in the result.
    """
    config = index_server_config(create_index_app(root, api, access_log=access_log))
    return run_in_thread(config, bind(host, port), "index server")
