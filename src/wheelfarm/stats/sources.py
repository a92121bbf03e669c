"""Lines of an access log: a file (plain or gzip), standard input, or a file that grows.

Following (``--follow``) reads to the end, then waits for more; when the file is replaced
(log rotation: another inode, or a shorter file) it starts on the new one from its beginning.
"""

from __future__ import annotations

import gzip
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from wheelfarm.errors import ConfigError

__all__ = ["follow_lines", "read_lines"]

_GZIP_MAGIC = b"\x1f\x8b"


def _open(path: Path | None) -> tuple[BinaryIO, BinaryIO]:
    """(what to read lines from, the file under it)."""
    if path is None:
        raw: BinaryIO = sys.stdin.buffer
        peek = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    else:
        try:
            raw = path.open("rb")
        except OSError as error:
            raise ConfigError("file", str(path), f"cannot read: {error.strerror}") from error
        peek = raw.read(2)
        raw.seek(0)
    if peek == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw), raw  # type: ignore[return-value]
    return raw, raw


def read_lines(path: Path | None) -> Iterator[bytes]:
    """The lines of ``path`` (None: standard input), gunzipped when they are gzip."""
    handle, raw = _open(path)
    try:
        yield from handle
    except (OSError, EOFError) as error:  # a truncated or corrupt gzip file: stop, say why
        raise ConfigError("file", str(path or "-"), f"cannot read on: {error}") from error
    finally:
        if path is not None:
            handle.close()
            raw.close()


def follow_lines(
    path: Path, stop: threading.Event, idle: Callable[[], None], poll: float = 1.0
) -> Iterator[bytes]:
    """Every complete line of a growing file, until ``stop``; ``idle`` runs while waiting."""
    handle = path.open("rb")
    partial = b""
    try:
        while not stop.is_set():
            chunk = handle.readline()
            if chunk:
                partial += chunk
                if partial.endswith(b"\n"):
                    yield partial
                    partial = b""
                continue
            idle()
            if stop.wait(poll):
                return
            try:
                now = os.stat(path)
            except FileNotFoundError:
                continue
            here = os.fstat(handle.fileno())
            if now.st_ino != here.st_ino or now.st_size < handle.tell():
                handle.close()
                handle = path.open("rb")
                partial = b""
    finally:
        handle.close()
