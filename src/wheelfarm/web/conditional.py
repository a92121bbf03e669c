"""HTTP's conditional and range request headers, parsed: pure functions of bytes and numbers.

A re-resolving pip sends ``If-None-Match`` and ``If-Modified-Since`` and should get 304s; pip's
lazy wheel reader and resumed downloads send ``Range``. The answers to those headers are rules
of HTTP (RFC 9110), not of this server, so they are kept apart from the app and its files:
no I/O, no ASGI, each function tested on a table of headers in tests/web/test_conditional.py.

Headers arrive as bytes (ASGI's form) and are read as Latin-1, as HTTP says.
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from typing import Literal

__all__ = ["etag_matches", "is_fresh", "not_modified_since", "parse_range"]


def etag_matches(header: bytes, etag: bytes) -> bool:
    """If-None-Match uses the weak comparison: ``W/`` is ignored, ``*`` matches anything."""
    if header.strip() == b"*":
        return True
    bare = etag.removeprefix(b"W/")
    return any(tag.strip().removeprefix(b"W/") == bare for tag in header.split(b","))


def not_modified_since(header: bytes, mtime: int) -> bool:
    """Whether a file last modified at ``mtime`` (whole seconds) is as old as the header's date.

    A date that does not parse is no condition at all: the file is sent.
    """
    try:
        since = parsedate_to_datetime(header.decode("latin-1")).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return False
    return mtime <= since


def is_fresh(
    if_none_match: bytes | None, if_modified_since: bytes | None, etag: bytes, mtime: int
) -> bool:
    """Whether the client's copy is current (answer 304); If-None-Match, if sent, decides alone."""
    if if_none_match is not None:
        return etag_matches(if_none_match, etag)
    return if_modified_since is not None and not_modified_since(if_modified_since, mtime)


def parse_range(header: bytes, size: int) -> tuple[int, int] | Literal[False] | None:
    """One ``bytes=`` range as (first, last); None to send it all; False if unsatisfiable.

    Several ranges in one request (multipart answers) are rare for wheels: those get the whole
    file, which HTTP allows. So does any header this function cannot read.
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
