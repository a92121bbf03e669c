"""The monitor's HTTP routes, mounted beside the builder API (``up`` wires them).

Admin only: ``/monitor/`` (the dashboard, or a sign-in form answered with 401), its JSON
(``data.json``, ``history.json``), its controls (``POST /monitor/control``) and, unless the
``public_metrics`` setting says otherwise, ``/metrics``. An admin signs in with a bearer header
or through the form, which sets an HttpOnly, Secure, SameSite=Strict cookie; a control sent with
that cookie must also carry the form token derived from it, so no other site can forge one.
Public: ``/status/`` and ``/status.json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import Engine

from wheelfarm.farm.pause import pause_farm, resume_farm
from wheelfarm.farm.registry import set_command
from wheelfarm.monitor import pages
from wheelfarm.monitor.admins import authenticate_admin, csrf_token
from wheelfarm.monitor.history import RANGES, series
from wheelfarm.monitor.metrics import render_metrics
from wheelfarm.monitor.overview import Thresholds, overview
from wheelfarm.monitor.status import farm_status

__all__ = ["COOKIE", "MonitorOptions", "create_monitor_router"]

COOKIE = "wheelfarm_admin"
_BUILDER_ACTIONS = {"pause": "pause", "resume": None, "skip": "skip", "stop": "stop"}


@dataclass(frozen=True)
class MonitorOptions:
    thresholds: Thresholds = field(default_factory=Thresholds)
    public_metrics: bool = False
    tree_dir: Path | None = None  # the published tree, for the last publish time
    follow_stale_after: float = 600.0  # the follower is "following" if it asked this recently


@dataclass(frozen=True)
class Admin:
    name: str
    token: str
    by_cookie: bool


def _credentials(request: Request) -> tuple[str, bool]:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme == "Bearer" and token:
        return token.strip(), False
    return request.cookies.get(COOKIE, ""), True


def _unauthorized(request: Request) -> HTTPException:
    return HTTPException(401, "an admin token is required", headers={"WWW-Authenticate": "Bearer"})


def create_monitor_router(
    engine: Engine, options: MonitorOptions, clock: Callable[[], float] = time.time
) -> APIRouter:
    """The monitor's routes over ``engine``.

    Long: the routes share the admin check and the options; one closure keeps them together.
    """
    router = APIRouter(include_in_schema=False)
    limits = options.thresholds

    def find_admin(request: Request) -> Admin | None:
        token, by_cookie = _credentials(request)
        with engine.connect() as connection:
            name = authenticate_admin(connection, token)
        return Admin(name, token, by_cookie) if name is not None else None

    def admin(request: Request) -> Admin:
        found = find_admin(request)
        if found is None:
            raise _unauthorized(request)
        return found

    signed = Depends(admin)  # a default value: the annotation names Admin only

    @router.get("/monitor")
    def monitor_slash() -> RedirectResponse:
        return RedirectResponse("/monitor/", status_code=308)

    @router.get("/monitor/", response_class=HTMLResponse)
    def dashboard(request: Request) -> HTMLResponse:
        found = find_admin(request)
        if found is None:
            return HTMLResponse(pages.sign_in(), status_code=401)
        return HTMLResponse(pages.dashboard(found.name, csrf_token(found.token)))

    @router.post("/monitor/login")
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0].strip()
        with engine.connect() as connection:
            name = authenticate_admin(connection, token)
        if name is None:
            return HTMLResponse(pages.sign_in("That is not an admin token."), status_code=401)
        response = RedirectResponse("/monitor/", status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, secure=True, samesite="strict", path="/")
        return response

    @router.post("/monitor/logout")
    def logout() -> Response:
        response = RedirectResponse("/monitor/", status_code=303)
        response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
        return response

    @router.get("/monitor/dashboard.js")
    def script() -> Response:
        return Response(pages.SCRIPT, media_type="text/javascript")

    @router.get("/monitor/data.json")
    def data(who: Admin = signed) -> JSONResponse:
        with engine.connect() as connection:
            return JSONResponse(overview(connection, clock(), limits))

    @router.get("/monitor/history.json")
    def history(
        who: Admin = signed,
        source: Annotated[str, Query(max_length=120)] = "master",
        range: Annotated[str, Query(pattern="^(hour|day|week)$")] = "hour",
    ) -> JSONResponse:
        since = clock() - RANGES[range]
        with engine.connect() as connection:
            points = series(connection, source, since=since)
        return JSONResponse({"source": source, "range": range, "points": points})

    @router.post("/monitor/control")
    async def control(request: Request, who: Admin = signed) -> JSONResponse:
        fields = await _fields(request)
        if who.by_cookie and fields.get("csrf") != csrf_token(who.token):
            raise HTTPException(403, "the form token is missing or wrong")
        return JSONResponse(_apply(engine, fields))

    @router.get("/status.json")
    def status_json() -> JSONResponse:
        with engine.connect() as connection:
            return JSONResponse(farm_status(connection, clock(), options))

    @router.get("/status/", response_class=HTMLResponse)
    def status_page() -> HTMLResponse:
        with engine.connect() as connection:
            return HTMLResponse(pages.status(farm_status(connection, clock(), options)))

    @router.get("/metrics")
    def metrics(request: Request) -> Response:
        if not options.public_metrics and find_admin(request) is None:
            raise _unauthorized(request)
        body = render_metrics(engine, limits, clock)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    return router


async def _fields(request: Request) -> dict[str, str]:
    """A control's fields, from a JSON object or a form."""
    body = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            value: Any = json.loads(body or b"{}")
        except ValueError:
            raise HTTPException(422, "the body is not JSON") from None
        if not isinstance(value, dict):
            raise HTTPException(422, "expected a JSON object")
        return {str(k): str(v) for k, v in value.items() if v is not None}
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


def _apply(engine: Engine, fields: dict[str, str]) -> dict[str, Any]:
    """Pause or resume the farm, or pause, resume, skip or stop one builder."""
    action, builder = fields.get("action", ""), fields.get("builder")
    with engine.begin() as connection:
        if not builder:
            if action == "pause":
                pause_farm(connection, "operator")
            elif action == "resume":
                resume_farm(connection)
            else:
                raise HTTPException(422, "the farm can be paused or resumed")
            return {"farm": action}
        if action not in _BUILDER_ACTIONS:
            raise HTTPException(422, "a builder can be paused, resumed, skipped or stopped")
        if not set_command(connection, builder, _BUILDER_ACTIONS[action]):
            raise HTTPException(404, f"no builder named {builder!r}")
    return {"builder": builder, "action": action}
