"""The tree's files as the index serves them: content types, cached entries, streamed bodies.

Every ``pip install`` reads the same few simple pages, so files up to :data:`SMALL_FILE` are
kept in memory with their response headers built once (:class:`FileCache`), up to
:data:`CACHE_BYTES` in all. Each request still costs one ``os.stat`` (the app's), against which
an entry is checked: an edit of the tree (size, mtime or inode changes) shows at once, with no
invalidation to arrange. Larger files are streamed from disk in :data:`CHUNK` pieces, read in a
worker thread so the event loop never waits on the disk.

Symlinks are refused, as docs/nginx.conf refuses them (``disable_symlinks``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from email.utils import formatdate

import anyio.to_thread

from wheelfarm.web.asgi import Send
from wheelfarm.web.headers import (
    COMPRESSIBLE,
    SERIAL_HEAD,
    cache_control,
    carries_serial,
    serial_of,
    vary_header,
)

__all__ = [
    "CACHE_BYTES",
    "CHUNK",
    "CONTENT_TYPES",
    "DEFAULT_TYPE",
    "SMALL_FILE",
    "FileCache",
    "FileEntry",
    "content_type_of",
    "identity",
    "load_entry",
    "stream_file",
]

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

SMALL_FILE = 1 << 20  # kept in memory up to this size
CACHE_BYTES = 256 << 20  # and up to this much in all
CHUNK = 256 << 10  # larger files are streamed in pieces of this size


@dataclass(slots=True)
class FileEntry:
    """One file as served: its identity on disk, its body when small, its response headers."""

    identity: tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns
    size: int
    etag: bytes
    mtime: int  # whole seconds, as Last-Modified shows it
    body: bytes | None  # None: too large to keep, streamed from disk
    headers_200: list[tuple[bytes, bytes]]
    headers_304: list[tuple[bytes, bytes]]
    gzipped: bool = False  # a gzip sibling (``<file>.gz``) exists to send instead


def identity(st: os.stat_result) -> tuple[int, int, int, int]:
    """What tells one version of a file from the next: a changed file differs in one of these."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def content_type_of(path: str) -> bytes:
    """The Content-Type header for a path, by its file ending (:data:`CONTENT_TYPES`)."""
    name = path.rpartition("/")[2]
    ending = name.rpartition(".")[2].lower() if "." in name else ""
    return CONTENT_TYPES.get(ending, DEFAULT_TYPE).encode()


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _read_piece(path: str, offset: int, length: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read(length)


def _ending(path: str) -> str:
    name = path.rpartition("/")[2]
    return name.rpartition(".")[2].lower() if "." in name else ""


async def load_entry(
    full: str,
    st: os.stat_result,
    content_type: bytes,
    vary: bool,
    *,
    relative: str = "",
    page_policy: bytes = b"max-age=0, must-revalidate",
    encoding: bytes | None = None,
) -> FileEntry | None:
    """Build a file's entry; None when a symlink is on its way (nginx refuses those too).

    ``full`` must be the real path of a file under a resolved root, with no ``.`` or ``..``:
    then any difference from :func:`os.path.realpath` is a symlink. ``vary`` marks a negotiated
    variant (``Vary: Accept``, no ranges). A small file's body is read here, and the file's
    identity taken again after the read, so the entry never pairs old headers with a new body.
    ``encoding`` (``b"gzip"``) marks the compressed sibling of ``relative``, which is sent with
    ``relative``'s type; the headers are :mod:`wheelfarm.web.headers`' rules.
    """
    if os.path.realpath(full) != full:
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
    gzipped = encoding is not None or (
        _ending(relative) in COMPRESSIBLE and os.path.isfile(full + ".gz")
    )
    etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'.encode()
    mtime = int(st.st_mtime)
    validators = [
        (b"etag", etag),
        (b"last-modified", formatdate(mtime, usegmt=True).encode()),
        (b"cache-control", cache_control(relative, page_policy)),
    ]
    varies = vary_header(vary, gzipped)
    if varies is not None:
        validators.append((b"vary", varies))
    stated = body
    if stated is None and carries_serial(relative):  # a page too large to keep: its start
        try:
            stated = await anyio.to_thread.run_sync(_read_piece, full, 0, SERIAL_HEAD)
        except OSError:
            return None
    serial = serial_of(relative, stated, gzipped=encoding is not None)
    if serial is not None:
        validators.append((b"x-pypi-last-serial", serial))
    headers_200 = [
        (b"content-type", content_type),
        (b"content-length", str(st.st_size).encode()),
        *validators,
    ]
    if encoding is not None:
        headers_200.append((b"content-encoding", encoding))
    if not vary:
        headers_200.append((b"accept-ranges", b"bytes"))
    return FileEntry(identity(st), st.st_size, etag, mtime, body, headers_200, validators, gzipped)


class FileCache:
    """Entries of small files by (path under the root, content type asked for), oldest dropped.

    The content type is part of the key because a negotiated page is the same file as its
    ``index.html`` with another type and other headers.
    """

    def __init__(
        self, budget: int = CACHE_BYTES, page_policy: bytes = b"max-age=0, must-revalidate"
    ) -> None:
        self.budget = budget
        self.page_policy = page_policy
        self._entries: dict[tuple[str, bytes | None], FileEntry] = {}
        self._cached_bytes = 0

    async def entry(
        self,
        relative: str,
        full: str,
        st: os.stat_result,
        content_type: bytes | None,
        vary: bool,
        encoding: bytes | None = None,
    ) -> FileEntry | None:
        """The entry for the file ``st`` describes: the cached one if still current, else anew.

        ``content_type`` None means by the file's ending. None when the file cannot be served
        (see :func:`load_entry`): the caller answers 404. With ``encoding``, ``full`` is the
        compressed sibling of ``relative``.
        """
        key = (relative + "\x00gz" if encoding else relative, content_type)  # no path has NUL
        entry = self._entries.get(key)
        if entry is None or entry.identity != identity(st):
            entry = await load_entry(
                full,
                st,
                content_type or content_type_of(relative),
                vary,
                relative=relative,
                page_policy=self.page_policy,
                encoding=encoding,
            )
            if entry is not None and entry.body is not None:
                self._remember(key, entry)
        return entry

    def _remember(self, key: tuple[str, bytes | None], entry: FileEntry) -> None:
        """Keep a small file's entry, dropping the oldest ones past the memory budget."""
        assert entry.body is not None
        old = self._entries.pop(key, None)
        if old is not None and old.body is not None:
            self._cached_bytes -= len(old.body)
        while self._entries and self._cached_bytes + len(entry.body) > self.budget:
            dropped = self._entries.pop(next(iter(self._entries)))
            self._cached_bytes -= len(dropped.body or b"")
        self._entries[key] = entry
        self._cached_bytes += len(entry.body)

    @property
    def cached_bytes(self) -> int:
        """The bytes of file bodies held now (never more than the budget)."""
        return self._cached_bytes

    def __len__(self) -> int:
        return len(self._entries)


async def stream_file(send: Send, full: str, start: int, end: int) -> None:
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
