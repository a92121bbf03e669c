"""Serve the published tree over HTTP: a small, fast ASGI app with the index's own rules.

The tree is static, so a plain file server would nearly do. What it would not do is what
installers rely on: PEP 691 content negotiation on ``/simple/`` (one URL, HTML or JSON by the
``Accept`` header or ``?format=``), ``Vary: Accept`` so caches keep the variants apart, 301s to
the normalised name (PEP 503), and conditional requests so a re-resolving pip gets 304s.

It is a raw ASGI callable rather than a Starlette application because it sits on the hot path of
every ``pip install``: routing is a few string tests, and small files are served from memory
(:mod:`wheelfarm.web.files`) after one ``os.stat`` per request. This module holds the routing
and the responses; the header rules are :mod:`wheelfarm.web.conditional`'s and
:mod:`wheelfarm.web.negotiation`'s, and running it under uvicorn is :mod:`wheelfarm.web.runner`'s.

``docs/nginx.conf`` implements the same behaviour for nginx; ``docs/serving.md`` explains both.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl

import anyio.to_thread
from packaging.utils import canonicalize_name

from wheelfarm.web.asgi import ASGIApp, Message, Receive, Scope, Send
from wheelfarm.web.files import CONTENT_TYPES, FileCache, FileEntry
from wheelfarm.web.headers import page_cache_control
from wheelfarm.web.mirror_api import UNLISTED_FILE, json_api, xmlrpc_answer
from wheelfarm.web.negotiation import VARIANTS, negotiate
from wheelfarm.web.responses import (
    accepts_gzip_of,
    base_url,
    lifespan,
    plain,
    read_bytes,
    redirect,
    secured,
    send_entry,
)
from wheelfarm.web.security import security_headers

__all__ = ["ACCESS_LOGGER", "API_PREFIXES", "HitCallback", "IndexApp", "create_index_app"]

ACCESS_LOGGER = "wheelfarm.web.access"

# API paths handed to the ``api`` app when one is given (the builder API and its docs, and the
# monitor: its dashboard, the status page and the metrics).
API_PREFIXES = (
    "/api/",
    "/docs",
    "/openapi.json",
    "/redoc",
    "/monitor",
    "/status/",
    "/status.json",
    "/metrics",
)

_HTML_TYPE = CONTENT_TYPES["html"].encode()
_NOT_ACCEPTABLE = b"Not acceptable: this page is offered as PEP 691 JSON or HTML\n"
_BUILTIN_404 = b"<!DOCTYPE html>\n<title>Not found</title>\n<h1>Not found</h1>\n"

_SITE_HEADERS = security_headers("/", api=False)

access = logging.getLogger(ACCESS_LOGGER)

HitCallback = Callable[[str, int, bytes, str | None], None]
"""Told of each answered GET: (path, status, the user agent as sent or b"", client address).

The user agent is handed over as the bytes the server read: decoding it, and anything else a
hit needs, is the recorder's, off the request path (issue 15)."""


class IndexApp:
    """The ASGI callable; see :func:`create_index_app`."""

    def __init__(
        self,
        root: Path,
        api: ASGIApp | None,
        access_log: bool,
        on_hit: HitCallback | None = None,
        page_max_age: int = 0,
    ) -> None:
        self.root = os.path.realpath(root)
        self.api = api
        self.access_log = access_log
        self.on_hit = on_hit
        self._policy = page_cache_control(page_max_age)
        self._files = FileCache(page_policy=self._policy)
        self._negotiated: dict[str, str | None] = {}

    # The entry point: dispatch, log, and never let a bad request crash the server.
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if self.api is not None:
                await self.api(scope, receive, send)
            elif kind == "lifespan":
                await lifespan(receive, send)
            return
        path: str = scope["path"]
        if self.api is not None and (path == "/api" or path.startswith(API_PREFIXES)):
            await self._api(scope, receive, secured(send, security_headers(path, api=True)))
            return
        guarded = secured(send, _SITE_HEADERS)
        if path in ("/pypi", "/pypi/") and scope["method"] == "POST":
            status = await self._xmlrpc(receive, guarded)
        else:
            status = await self._handle(scope, guarded)
        if self.access_log:
            self._log(scope, status)
        if self.on_hit is not None and status in (200, 206, 304):
            self._hit(scope, status)

    def _hit(self, scope: Scope, status: int) -> None:
        """Tell ``on_hit`` of a GET (it must not block); its failure never fails a request."""
        if scope["method"] != "GET" or self.on_hit is None:
            return
        agent = b""
        for key, value in scope["headers"]:
            if key == b"user-agent":
                agent = value
                break
        client = scope.get("client")
        try:
            self.on_hit(scope["path"], status, agent, client and client[0])
        except Exception:
            access.exception("recording a hit failed")

    async def _api(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hand the request to the API app, noting the status it answers for the access log."""
        assert self.api is not None
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

    def _log(self, scope: Scope, status: int) -> None:
        target = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        shown = target.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        access.info("%s %s %d", scope["method"], shown, status)

    async def _handle(self, scope: Scope, send: Send) -> int:
        method: str = scope["method"]
        path: str = scope["path"]
        if method not in ("GET", "HEAD"):
            return await plain(send, 405, b"Method not allowed\n", [(b"allow", b"GET, HEAD")])
        if "\x00" in path:
            return await plain(send, 400, b"Bad request\n")
        if not path.startswith("/") or "\\" in path:
            return await self._not_found(scope, send)
        parts = path[1:].split("/")
        if any(p.startswith(".") for p in parts) or "" in parts[:-1]:
            # "." and "..", the tree's own lock and marks, pages being written: never served
            return await self._not_found(scope, send)
        head = parts[0]
        if head == "simple":
            return await self._simple(scope, send, parts)
        if head == "pypi":
            return await self._json_api(scope, send, parts)
        if head == "packages":  # the mirrors' name for /files/ (see mirror_api)
            return await self._static(scope, send, "/".join(["files", *parts[1:]]))
        if head == "project" and len(parts) >= 2:
            canonical = canonicalize_name(parts[1])
            if parts[1] != canonical:
                rest = "/".join(parts[2:])
                return await redirect(scope, send, f"/project/{canonical}/{rest}")
        return await self._static(scope, send, "/".join(parts))

    async def _simple(self, scope: Scope, send: Send, parts: list[str]) -> int:
        """``/simple/`` and ``/simple/<name>/``: negotiated; other spellings: redirected."""
        if len(parts) == 1:  # /simple
            return await redirect(scope, send, "/simple/")
        name = parts[1]
        if len(parts) == 2 and name in ("", "index.html", "index.json"):
            if name == "":
                return await self._negotiated_page(scope, send, "simple")
            return await self._static(scope, send, f"simple/{name}")
        canonical = canonicalize_name(name)
        if canonical != name:
            rest = "/".join(parts[2:])
            return await redirect(scope, send, f"/simple/{canonical}/{rest}")
        if len(parts) == 2:  # /simple/<name>
            return await redirect(scope, send, f"/simple/{name}/")
        if len(parts) == 3 and parts[2] == "":
            return await self._negotiated_page(scope, send, f"simple/{name}")
        return await self._static(scope, send, "/".join(parts))

    async def _xmlrpc(self, receive: Receive, send: Send) -> int:
        """``POST /pypi``: the XML-RPC calls mirrors make, answered from the simple root."""
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > 1 << 20:
                return await plain(send, 413, b"Request too large\n")
            chunks.append(chunk)
            more = message.get("more_body", False) and message["type"] == "http.request"
        root = f"{self.root}/simple/index.json"
        try:
            root_json: bytes | None = await anyio.to_thread.run_sync(read_bytes, root)
            timestamp = int(os.stat(root).st_mtime)
        except OSError:
            root_json, timestamp = None, 0
        try:
            unlisted: bytes | None = await anyio.to_thread.run_sync(
                read_bytes, f"{self.root}/{UNLISTED_FILE}"
            )
        except OSError:
            unlisted = None  # a tree written before there was such a file
        answer = xmlrpc_answer(b"".join(chunks), root_json, timestamp, unlisted)
        return await plain(send, 200, answer, content_type=b"text/xml")

    async def _json_api(self, scope: Scope, send: Send, parts: list[str]) -> int:
        """``/pypi/<name>/json`` and ``/pypi/<name>/<version>/json``: the upstream JSON API's
        shape, from the project's JSON, with ``X-PyPI-Last-Serial``."""
        rest = parts[2:-1] if parts[-1] == "" else parts[2:]
        if len(parts) < 3 or not parts[1] or not 1 <= len(rest) <= 2 or rest[-1] != "json":
            return await self._not_found(scope, send)
        version = rest[0] if len(rest) == 2 else None
        name = canonicalize_name(parts[1])
        try:
            data = await anyio.to_thread.run_sync(
                read_bytes, f"{self.root}/project/{name}/json/index.json"
            )
        except (OSError, ValueError):
            return await self._not_found(scope, send)
        answered = json_api(data, base_url(scope), version)
        if answered is None:
            return await self._not_found(scope, send)
        body, serial = answered
        headers = [(b"x-pypi-last-serial", str(serial).encode()), (b"cache-control", self._policy)]
        if scope["method"] == "HEAD":
            body_length = str(len(body)).encode()
            start = [(b"content-type", b"application/json"), (b"content-length", body_length)]
            await send({"type": "http.response.start", "status": 200, "headers": start + headers})
            await send({"type": "http.response.body", "body": b""})
            return 200
        return await plain(send, 200, body, headers, content_type=b"application/json")

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
            return await plain(send, 406, _NOT_ACCEPTABLE, [(b"vary", b"Accept")])
        offered = VARIANTS[variant]
        return await self._static(
            scope,
            send,
            f"{directory}/{offered.filename}",
            content_type=offered.content_type,
            vary=True,
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
                return await redirect(scope, send, f"/{relative}/")
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
        entry = await self._files.entry(relative, full, st, content_type, vary)
        if entry is None:
            return None
        if entry.gzipped and accepts_gzip_of(scope):
            compressed = await self._compressed(relative, full, content_type, vary)
            if compressed is not None:
                return await send_entry(scope, send, compressed, full + ".gz", ranged=not vary)
        return await send_entry(scope, send, entry, full, ranged=not vary)

    async def _compressed(
        self, relative: str, full: str, content_type: bytes | None, vary: bool
    ) -> FileEntry | None:
        """The gzip sibling's entry (None when it went meanwhile: the plain file is sent)."""
        try:
            st = os.stat(full + ".gz")
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        return await self._files.entry(relative, full + ".gz", st, content_type, vary, b"gzip")

    async def _not_found(self, scope: Scope, send: Send) -> int:
        """The tree's own 404.html when it has one, with status 404 all the same."""
        page = f"{self.root}/404.html"
        try:
            st = os.stat(page)
            entry = await self._files.entry("404.html", page, st, None, False)
            body = entry.body if entry is not None and entry.body is not None else _BUILTIN_404
        except OSError:
            body = _BUILTIN_404
        if scope["method"] == "HEAD":
            headers = [(b"content-type", _HTML_TYPE), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 404, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return 404
        return await plain(send, 404, body, content_type=_HTML_TYPE)


def create_index_app(
    root: Path,
    api: ASGIApp | None = None,
    *,
    access_log: bool = False,
    on_hit: HitCallback | None = None,
    page_max_age: int = 0,
) -> IndexApp:
    """The ASGI app serving the published tree at ``root``.

    ``api``, when given, answers ``/api/...``, ``/docs``, ``/openapi.json`` and ``/redoc`` (the
    builder API), so one server on one port can serve both; it also receives lifespan events.
    ``access_log`` logs ``METHOD path status`` for each request to the ``wheelfarm.web.access``
    logger at INFO: what was fetched (``.metadata`` files, say) can then be checked.
    ``on_hit``, when given, is called after each GET answered 200, 206 or 304 (statistics: see
    docs/stats.md); it must return at once. ``page_max_age``: how long clients may reuse a page
    before revalidating it (wheels and ``.metadata`` files are immutable).
    """
    return IndexApp(root, api, access_log, on_hit, page_max_age)
