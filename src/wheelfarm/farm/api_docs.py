"""The builder API's ``/docs`` page, working offline: Swagger UI from a package, not a CDN.

FastAPI's default page loads Swagger UI's script and style from a CDN, so on a farm without
internet access (or behind a strict proxy) ``/docs`` is blank. The assets come from
``swagger-ui-bundle-v2`` (Swagger UI 5, which reads FastAPI's OpenAPI 3.1) and are served by
the app itself under ``/docs/assets/``. ReDoc, which has no such package, is left out.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

__all__ = ["ASSETS", "add_offline_docs"]

ASSETS = "/docs/assets"


def add_offline_docs(app: FastAPI) -> None:
    """Serve ``/docs`` with locally served Swagger UI assets (create the app with
    ``docs_url=None, redoc_url=None``)."""
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="swagger-ui-assets")

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - docs",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )

    app.add_api_route("/docs", docs, include_in_schema=False, response_class=HTMLResponse)
