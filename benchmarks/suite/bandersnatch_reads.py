"""bandersnatch's page reads, run by the Python of bandersnatch's own virtual environment.

``python bandersnatch_reads.py BASE_URL WORKERS NAME...`` reads each project's JSON API page
(``BASE_URL/pypi/NAME/json``) through bandersnatch's own machinery: its ``Master`` (aiohttp,
the serial check on every page) and its ``Mirror.sync_packages`` (a queue drained by
``WORKERS`` coroutines, each calling ``Package.update_metadata``), with a ``process_package``
that keeps what was read and writes nothing. Prints one JSON line: projects read, seconds.

This file imports only bandersnatch and the standard library: wheelfarm is not installed where
it runs (benchmarks/suite/reconcile.py starts it).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from bandersnatch.master import Master
from bandersnatch.mirror import Mirror
from bandersnatch.package import Package

__all__ = ["main"]


class _ReadOnly(Mirror):
    """bandersnatch's mirror loop, keeping each page read and writing nothing."""

    def __init__(self, master: Master, workers: int) -> None:
        super().__init__(master, workers)
        self.read = 0

    async def process_package(self, package: Package) -> None:
        if not package.metadata.get("info"):
            raise RuntimeError(f"{package.name}: a JSON page without info")
        self.read += 1

    def finalize_sync(self, sync_index_page: bool = True) -> None:
        """Nothing to write."""

    def on_error(self, exception: BaseException, **kwargs: Any) -> None:
        raise RuntimeError(f"bandersnatch could not read a page: {exception!r}") from exception


async def _read(base_url: str, workers: int, names: Sequence[str]) -> tuple[int, float]:
    async with Master(base_url, allow_non_https=True) as master:  # the fake listens on http
        mirror = _ReadOnly(master, workers)
        mirror.packages_to_sync = {name: 0 for name in names}
        began = time.perf_counter()
        await mirror.sync_packages()
        return mirror.read, time.perf_counter() - began


def main(argv: Sequence[str]) -> None:
    base_url, workers, *names = argv
    read, seconds = asyncio.run(_read(base_url, int(workers), names))
    print(json.dumps({"projects": read, "seconds": seconds}))


if __name__ == "__main__":
    main(sys.argv[1:])
