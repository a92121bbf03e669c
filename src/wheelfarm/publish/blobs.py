"""The stored bytes only some writes need: wheels' METADATA files and build logs.

They are never part of the published values (:mod:`wheelfarm.publish.loader`): they never change
once written, so the writers read them only for the files the tree is missing.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from sqlalchemy import Connection, select

from wheelfarm.publish.queries import chunked
from wheelfarm.store.schema import build_files, builds

__all__ = ["Blobs"]


class Blobs:
    """Reads the bytes only some writes need: METADATA files and build logs."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def metadata(self, filenames: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for part in chunked(filenames):
            rows = self.connection.execute(
                select(build_files.c.filename, build_files.c.metadata).where(
                    build_files.c.filename.in_(part)
                )
            )
            found.update({name: data for name, data in rows if data is not None})
        return found

    def logs(self, ids: Sequence[int]) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        for part in chunked(ids):
            rows = self.connection.execute(
                select(builds.c.id, builds.c.log).where(
                    builds.c.id.in_(part), builds.c.log.is_not(None)
                )
            )
            for build_id, log in rows:
                try:
                    found[build_id] = zlib.decompress(log)
                except zlib.error:
                    found[build_id] = b"[the stored log is damaged and cannot be shown]\n"
        return found
