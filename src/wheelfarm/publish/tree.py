"""The published tree on disk: a static site any web server can serve as it is.

This module is the tree's file operations and nothing else; what goes into it is decided by the
writers (:mod:`~wheelfarm.publish.project_writer`, :mod:`~wheelfarm.publish.site_writer`).

Every file is written under a temporary name in its own directory and renamed into place, so a
reader sees the old bytes or the new ones, never a mix. A file whose bytes would not change is
not touched, which keeps its mtime (and a web server's ETag) stable. Wheels that are taken down
are moved to the withdrawn directory, not deleted, and come back if they are published again (a
quarantine that is lifted, say).

Durability: one-project writes fsync each file and its directory. A full regeneration does not
fsync file by file (that would cost more than the writing); it syncs the file systems once at
the end, when it wrote or removed anything. A crash in between can leave files of the
regeneration unwritten or empty; the next ``wheelfarm write --all`` (and every start of
``wheelfarm up``) rewrites whatever differs.
"""

from __future__ import annotations

import errno
import fcntl
import gzip
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

__all__ = ["COMPRESSED_ENDINGS", "COMPRESS_ABOVE", "SIBLINGS_MARK", "Tree", "gzip_bytes"]

# Text files above COMPRESS_ABOVE bytes get a gzip sibling (``index.html.gz``) for servers to
# send to clients that accept it (nginx's ``gzip_static``; wheelfarm.web.headers).
COMPRESSED_ENDINGS = (".html", ".json", ".xml", ".css", ".js", ".svg")
COMPRESS_ABOVE = 1024
# A file in the tree's root that says every page above COMPRESS_ABOVE has its sibling: a full
# regeneration leaves it, and then need not look for the sibling of each page it finds unchanged
# (a stat per page, 2-3% of a regeneration). Whatever could leave a page without its sibling
# (a page shrinking below the limit, a page taken down) removes it first.
SIBLINGS_MARK = ".gzip-siblings"


def gzip_bytes(data: bytes) -> bytes:
    """The gzip form of a page: deterministic (no name, no time), so equal pages compress equal.

    Level 6, zlib's default: level 9 saved about 1% more at twice the time.
    """
    return gzip.compress(data, compresslevel=6, mtime=0)


class Tree:
    """The published tree under ``root``; wheels taken down go to ``withdrawn``."""

    def __init__(self, root: Path, withdrawn: Path, *, durable: bool = True) -> None:
        self.root = root
        self.withdrawn = withdrawn
        self.durable = durable
        self.simple = root / "simple"
        self.files = root / "files"
        self.project = root / "project"
        self.badges = root / "badges"
        self.logs = root / "logs"
        self.static = root / "static"
        self._touched_dirs: set[str] = set()  # to fsync, when durable
        # When true, an unchanged page's sibling is taken to be there (see SIBLINGS_MARK).
        self.siblings_complete = False

    # -- single files --------------------------------------------------------------------

    def put(self, path: Path | str, data: bytes) -> bool:
        """Make ``path`` hold ``data`` atomically; returns False when it already did.

        A text page above :data:`COMPRESS_ABOVE` bytes gets its gzip sibling, written before
        the page (so a crash between the two leaves a page that differs, and is written again);
        a page that shrank below it loses its sibling.
        """
        path = os.fspath(path)
        compress = path.endswith(COMPRESSED_ENDINGS)
        try:
            descriptor = _open_to_compare(path)
        except FileNotFoundError:
            pass
        else:
            try:
                # A regular file's read returns everything up to the size asked for.
                same = os.read(descriptor, len(data) + 1) == data
            finally:
                os.close(descriptor)
            if same:
                if (
                    compress
                    and len(data) > COMPRESS_ABOVE
                    and not self.siblings_complete
                    and not os.path.exists(path + ".gz")
                ):
                    self._write(path + ".gz", gzip_bytes(data))  # a tree from before siblings
                return False
        if compress:
            if len(data) > COMPRESS_ABOVE:
                self._write(path + ".gz", gzip_bytes(data))
            else:
                self._remove_sibling(path)
        self._write(path, data)
        return True

    def _write(self, path: str, data: bytes) -> None:
        """Write ``data`` under a temporary name in ``path``'s directory, then rename it."""
        parent, _, base = path.rpartition("/")
        temporary = f"{parent}/.{base}.{os.getpid()}.{threading.get_ident()}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        try:
            descriptor = os.open(temporary, flags, 0o644)
        except FileNotFoundError:
            os.makedirs(parent, exist_ok=True)
            descriptor = os.open(temporary, flags, 0o644)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(descriptor, view) :]
                if self.durable:
                    os.fsync(descriptor)
            finally:
                os.close(descriptor)
            os.replace(temporary, path)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        if self.durable:
            self._touched_dirs.add(parent)

    def _remove_sibling(self, path: str) -> None:
        """Remove a page's sibling; first the mark, when there is a sibling to remove (a crash
        before the page goes too would leave a page without its sibling)."""
        sibling = path + ".gz"
        if os.path.exists(sibling):
            self.forget_siblings()
            with suppress(FileNotFoundError):
                os.unlink(sibling)

    def remove(self, path: Path) -> bool:
        """Remove a file, and its gzip sibling if it has one."""
        if path.name.endswith(COMPRESSED_ENDINGS):
            self._remove_sibling(os.fspath(path))
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        self._touched_dirs.add(str(path.parent))
        return True

    def prune(self, directory: Path) -> None:
        """Remove ``directory`` if it is empty (a stray temporary file keeps it)."""
        try:
            directory.rmdir()
        except FileNotFoundError:
            pass
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise

    def sync(self) -> None:
        """Make what was written durable: the directories' entries (files are synced already),
        or everything at once after a full regeneration."""
        if not self.durable:
            os.sync()
        else:
            for directory in self._touched_dirs:
                try:
                    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
                except FileNotFoundError:
                    continue
                try:
                    os.fsync(descriptor)
                finally:
                    os.close(descriptor)
        self._touched_dirs.clear()

    # -- the siblings' mark (SIBLINGS_MARK) ------------------------------------------------

    def siblings_marked(self) -> bool:
        """Whether the tree says every page above :data:`COMPRESS_ABOVE` has its sibling."""
        return os.path.exists(self.root / SIBLINGS_MARK)

    def mark_siblings(self) -> None:
        """Say so: a full regeneration just made sure of it."""
        if not self.siblings_marked():
            self._write(os.fspath(self.root / SIBLINGS_MARK), b"")

    def forget_siblings(self) -> None:
        """Stop saying so (before something could leave a page without its sibling)."""
        self.siblings_complete = False
        with suppress(FileNotFoundError):
            os.unlink(self.root / SIBLINGS_MARK)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One writer at a time (the publisher of ``up`` and a ``wheelfarm write``)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- wheels ----------------------------------------------------------------------------

    def withdraw(self, name: str, filename: str) -> bool:
        """Move a published wheel out of the tree (kept, in case it is published again)."""
        source = self.files / name / filename
        if not source.exists():
            return False
        target = self.withdrawn / name / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        self._touched_dirs.add(str(source.parent))
        return True

    def restore(self, name: str, filename: str) -> bool:
        """Bring a withdrawn wheel back into the tree, if we have it."""
        source = self.withdrawn / name / filename
        target = self.files / name / filename
        if not source.exists():
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except FileNotFoundError:
            return False
        except FileExistsError:
            pass
        source.unlink(missing_ok=True)
        self._touched_dirs.add(str(target.parent))
        return True


_NO_ATIME = getattr(os, "O_NOATIME", 0)


def _open_to_compare(path: str) -> int:
    """Open a page to compare it, without touching its access time where we may: a regeneration
    reads every page, and the first read after a write would otherwise dirty every inode."""
    if _NO_ATIME:
        try:
            return os.open(path, os.O_RDONLY | _NO_ATIME)
        except PermissionError:  # O_NOATIME needs the file's owner (or CAP_FOWNER)
            pass
    return os.open(path, os.O_RDONLY)
