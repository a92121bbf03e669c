"""What keeps ``wheelfarm up`` standing against careless operators and full disks.

- One ``up`` per data directory: a second would re-register the local builder and revoke the
  first one's token, so the first one's builder would die while its process went on. ``up``
  holds a kernel lock on ``<data_dir>/up.pid`` (which holds its PID) for as long as it runs.
- A full disk under the database or the tree pauses following and building instead of ending
  the process, so what is published is still served; the pause ends by itself when a probe
  write succeeds again.
"""

from __future__ import annotations

import errno
import fcntl
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from wheelfarm.errors import WheelfarmError

__all__ = ["UP_LOCK_NAME", "DataDirBusy", "SpaceWatch", "disk_full", "hold_data_dir"]


class DataDirBusy(WheelfarmError):
    """Another ``wheelfarm up`` runs on this data directory: two would fight over its builder."""

    def __init__(self, data_dir: Path, pid: str) -> None:
        super().__init__(
            f"another 'wheelfarm up' (PID {pid or 'unknown'}) is running on the data directory "
            f"{data_dir}; stop it first, or give this one its own --data-dir"
        )
        self.data_dir = data_dir
        self.pid = pid


UP_LOCK_NAME = "up.pid"
"""The file in the data directory that ``up`` holds locked (fcntl) and writes its PID into."""


def hold_data_dir(data_dir: Path) -> int:
    """Lock the data directory for this process; returns the descriptor to close on the way out.

    The lock is the kernel's (``flock``), so it goes with the process however it ends: a PID
    left in the file by a killed ``up`` does not keep the next one out.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / UP_LOCK_NAME
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        holder = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip()
        os.close(descriptor)
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise DataDirBusy(data_dir.resolve(), holder) from None
        raise
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
    return descriptor


_SQLITE_FULL = 13  # "database or disk is full"
_PG_DISK_FULL = "53100"


def disk_full(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) is a full disk: under the database or any file.

    SQLite says SQLITE_FULL, PostgreSQL SQLSTATE 53100, the operating system ENOSPC or EDQUOT;
    SQLAlchemy wraps the first two (``orig``), our own errors may wrap the last.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for candidate in (current, getattr(current, "orig", None)):
            if isinstance(candidate, OSError) and candidate.errno in (errno.ENOSPC, errno.EDQUOT):
                return True
            if getattr(candidate, "sqlite_errorcode", None) == _SQLITE_FULL:
                return True
            if getattr(candidate, "sqlstate", None) == _PG_DISK_FULL:
                return True
        current = current.__cause__ or current.__context__
    return False


class SpaceWatch:
    """``up``'s pause for a full disk: following and building stop, serving goes on.

    Whoever hits a full disk (a follow round, the publisher) calls :meth:`full`; the builder
    API hands out no work while :attr:`paused`. The follow loop calls :meth:`space_back`, which
    writes a probe file in each folder that must have room, and resumes when all succeed. The
    pause is announced at once and then every ``every`` seconds until it ends.
    """

    PROBE_BYTES = 1024 * 1024

    def __init__(
        self, folders: Sequence[Path], say: Callable[[str], None], every: float = 60.0
    ) -> None:
        self._folders = list(folders)
        self._say = say
        self._every = every
        self._lock = threading.Lock()
        self._where: str | None = None
        self._said_full = -math.inf
        self._said_back = -math.inf

    @property
    def paused(self) -> bool:
        return self._where is not None

    def full(self, where: str) -> None:
        """The disk under ``where`` is full: pause (if not yet) and say so, once a minute."""
        with self._lock:
            self._where = where
            now = time.monotonic()
            if now - self._said_full < self._every:
                return  # said already this minute (also across a pause that ended and came back)
            self._said_full = now
        self._say(
            f"disk full under {where}: following and building are paused, what is published "
            "is still served; they resume by themselves when there is space again"
        )

    def space_back(self) -> bool:
        """Whether there is room again (then the pause ends, and that is said too)."""
        for folder in self._folders:
            probe = folder / ".wheelfarm-space-probe"
            try:
                with probe.open("wb") as handle:
                    handle.write(bytes(self.PROBE_BYTES))
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as error:
                if not disk_full(error):
                    raise
                self.full(self._where or str(folder))
                return False
            finally:
                probe.unlink(missing_ok=True)
        with self._lock:
            was, self._where = self._where, None
            now = time.monotonic()
            if was is None or now - self._said_back < self._every:
                return True  # a disk that fills and frees at once is told once a minute
            self._said_back = now
        if was is not None:
            self._say(f"there is space again under {was}: following and building resumed")
        return True
