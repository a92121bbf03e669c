"""The index's caching, compression and serial headers, decided in one place.

- ``Cache-Control``: wheels and their ``.metadata`` files never change under their name, so
  they are ``immutable`` for a year; every other file (simple pages, project pages, the site's
  pages) must be revalidated after ``page_max_age`` seconds (0 by default: a build farm's users
  wait for a wheel to appear, and a revalidation costs one 304).
- ``Content-Encoding``: the publisher writes a gzip sibling (``index.html.gz``) beside every
  text page above 1 KB; a client that accepts gzip gets it, with ``Vary: Accept-Encoding`` on
  both forms (as nginx's ``gzip_static`` sends it).
- ``X-PyPI-Last-Serial``: a simple page's serial, read from the page itself (its JSON
  ``meta._last-serial`` or its HTML ``<!--SERIAL n-->`` comment), as mirrors expect it; the
  project JSON's too (its ``serial``).

docs/nginx.conf sends the same ``Cache-Control``, encodings and serials (its ``map``,
``gzip_static`` and docs/nginx-serial.js); the tests in tests/web hold the two servers to each
other.
"""

from __future__ import annotations

import re
import zlib

__all__ = [
    "COMPRESSIBLE",
    "IMMUTABLE",
    "SERIAL_HEAD",
    "accepts_gzip",
    "cache_control",
    "carries_serial",
    "page_cache_control",
    "serial_of",
    "vary_header",
]

IMMUTABLE = b"max-age=31536000, immutable"

# File endings the publisher may write a ``.gz`` sibling for (text, worth compressing).
COMPRESSIBLE = frozenset({"html", "json", "xml", "css", "js", "svg"})

_SERIAL = re.compile(rb'<!--SERIAL ([0-9]+)-->|"_last-serial":\s*([0-9]+)')
_PROJECT_SERIAL = re.compile(rb'"serial":\s*([0-9]+)')
_GZIP = re.compile(rb"(?:^|,)\s*(?:gzip|x-gzip|\*)\s*(;[^,]*)?(?=,|$)", re.IGNORECASE)
_ZERO_Q = re.compile(rb";\s*q\s*=\s*0(?:\.0*)?\s*$", re.IGNORECASE)


def page_cache_control(max_age: int) -> bytes:
    """What pages that change are sent with: reuse for ``max_age`` seconds, then revalidate."""
    return f"max-age={int(max_age)}, must-revalidate".encode()


def cache_control(relative: str, page_policy: bytes) -> bytes:
    """The ``Cache-Control`` of a file of the tree, by its path under the root."""
    if relative.startswith("files/") and relative.endswith((".whl", ".metadata")):
        return IMMUTABLE
    return page_policy


def accepts_gzip(header: bytes | None) -> bool:
    """Whether an ``Accept-Encoding`` header takes gzip (named, or ``*``, with a q above 0)."""
    if not header:
        return False
    for match in _GZIP.finditer(header):
        parameters = match.group(1)
        if parameters is None or not _ZERO_Q.search(parameters):
            return True
    return False


def vary_header(negotiated: bool, compressed: bool) -> bytes | None:
    """``Vary``: ``Accept`` on negotiated pages, ``Accept-Encoding`` where a gzip form exists."""
    if negotiated and compressed:
        return b"Accept, Accept-Encoding"
    if negotiated:
        return b"Accept"
    if compressed:
        return b"Accept-Encoding"
    return None


SERIAL_HEAD = 4096
"""How much of a page's start :func:`serial_of` reads (docs/nginx-serial.js reads as much)."""


def carries_serial(relative: str) -> bool:
    """Whether a file of the tree states a serial for ``X-PyPI-Last-Serial``: a simple page
    (a project's, or the root) or a project JSON."""
    name = relative.removesuffix(".gz")
    return (name.startswith("simple/") and name.endswith(("/index.html", "/index.json"))) or (
        name.startswith("project/") and name.endswith("/json/index.json")
    )


def serial_of(relative: str, body: bytes | None, *, gzipped: bool = False) -> bytes | None:
    """A page's serial (for ``X-PyPI-Last-Serial``): a simple page's, or a project JSON's;
    None for any other file.

    The serial is near the top of the page (JSON ``meta`` comes first, the HTML comment follows
    the title, the project JSON's ``serial`` follows its names and summary), so only the first
    kilobytes are read, decompressed first if ``gzipped``.
    """
    if body is None or not carries_serial(relative):
        return None
    pattern = _PROJECT_SERIAL if relative.startswith("project/") else _SERIAL
    head = body[:SERIAL_HEAD]
    if gzipped:  # ``body`` may be only the start of the compressed file: enough to inflate
        try:
            head = zlib.decompressobj(wbits=31).decompress(body, SERIAL_HEAD)
        except zlib.error:
            return None
    match = pattern.search(head)
    if match is None:
        return None
    found: bytes = match.group(match.lastindex or 1)
    return found
