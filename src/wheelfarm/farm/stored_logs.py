"""How the master keeps a build's log: compressed, within a size, its header never cut.

A log is kept as its tail within :data:`LOG_CAP` bytes, since the end of a failed build says
most; but the builder's header (:mod:`wheelfarm.builder.log_frame`) says what was built where,
so when the log is cut the header (when it is short, as a real one is) is kept before the
notice of what was dropped.
"""

from __future__ import annotations

import zlib
from typing import NamedTuple

from wheelfarm.log_markers import LOG_HEADER_MARKER, LOG_OUTPUT_MARKER

__all__ = ["LOG_CAP", "CompressedLog", "compress_log"]

LOG_CAP = 1 << 20  # bytes of build log kept (its tail)
_HEADER_BYTES = 4096  # a header longer than this is no header of ours: it is cut like output


class CompressedLog(NamedTuple):
    data: bytes  # zlib
    size: int  # uncompressed bytes


def _header(raw: bytes) -> bytes:
    """The builder's header at the start of ``raw`` (through its output marker), or b""."""
    if not raw.startswith(LOG_HEADER_MARKER.encode() + b"\n"):
        return b""
    end = raw.find(b"\n" + LOG_OUTPUT_MARKER.encode() + b"\n", 0, _HEADER_BYTES)
    return raw[: end + len(LOG_OUTPUT_MARKER) + 2] if end >= 0 else b""


def compress_log(text: str) -> CompressedLog:
    """The log within :data:`LOG_CAP` (its header, then its tail), zlib-compressed."""
    raw = text.encode("utf-8", "replace")
    if len(raw) > LOG_CAP:
        header = _header(raw)
        keep = LOG_CAP - len(header)
        dropped = len(raw) - len(header) - keep
        notice = f"[log truncated: {dropped} bytes dropped]\n".encode()
        raw = header + notice + raw[-keep:]
    return CompressedLog(zlib.compress(raw, 6), len(raw))
