"""``up`` on a full disk: the pause of following and claims, and the 503 of a full database."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError

from wheelfarm.config import Settings
from wheelfarm.guards import SpaceWatch, disk_full
from wheelfarm.protocol import API_PREFIX, ClaimReply

__all__ = ["pause_with", "space_watch"]

log = logging.getLogger(__name__)


def space_watch(settings: Settings, say: Callable[[str], None]) -> SpaceWatch:
    """The full-disk pause of ``up``, probing the data directory and a SQLite file's folder."""
    folders = [settings.data_dir]
    if settings.database_url.startswith("sqlite:///"):
        folder = Path(settings.database_url.removeprefix("sqlite:///")).parent
        if folder.resolve() != settings.data_dir.resolve():
            folders.append(folder)
    return SpaceWatch(folders, say)


def pause_with(api: FastAPI, space: SpaceWatch, retry_after: float) -> None:
    """While ``space`` is paused, claims get no job; a full database is a 503 and pauses it."""
    idle = ClaimReply(retry_after=retry_after).model_dump(mode="json")

    @api.middleware("http")
    async def no_claims_while_paused(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if space.paused and request.url.path == f"{API_PREFIX}/claim":
            return JSONResponse(idle)
        return await call_next(request)

    def full_database(_request: Request, error: Exception) -> Response:
        if not disk_full(error):
            raise error  # a 500, logged with its traceback: not ours to explain
        space.full("the database")
        return JSONResponse(
            {"detail": "the master's disk is full; try again later"},
            status_code=503,
            headers={"Retry-After": "60"},
        )

    api.add_exception_handler(DBAPIError, full_database)
