"""The builder API's ``/docs`` page, working offline: Swagger UI from a package, not a CDN.

FastAPI's default page loads Swagger UI's script and style from a CDN, so on a farm without
internet access (or behind a strict proxy) ``/docs`` is blank. The assets come from
``swagger-ui-bundle-v2`` (Swagger UI 5, which reads FastAPI's OpenAPI 3.1) and are served by
the app itself under ``/docs/assets/``. ReDoc, which has no such package, is left out.

FastAPI's page also starts Swagger UI with an inline script, which a Content-Security-Policy
can only allow with ``'unsafe-inline'`` or a hash of the exact text (and that text holds the
OpenAPI URL, so the hash would follow the configuration). Here the page is plain markup and
the start is a script of its own, ``/docs/init.js``: the page's policy
(:data:`wheelfarm.web.security.DOCS_POLICY`) allows scripts and styles from this origin only.
"""

from __future__ import annotations

import html
import json

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

__all__ = ["ASSETS", "INIT_SCRIPT", "add_offline_docs", "docs_html", "init_script"]

ASSETS = "/docs/assets"
INIT_SCRIPT = "/docs/init.js"


def docs_html(title: str) -> str:
    """The page: Swagger UI's style sheet and script, then the script that starts it."""
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n"
        f'<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">\n'
        f'<link rel="icon" href="{ASSETS}/favicon-32x32.png">\n'
        '</head>\n<body>\n<div id="swagger-ui"></div>\n'
        f'<script src="{ASSETS}/swagger-ui-bundle.js"></script>\n'
        f'<script src="{INIT_SCRIPT}"></script>\n'
        "</body>\n</html>\n"
    )


def init_script(openapi_url: str) -> str:
    """Start Swagger UI on the app's OpenAPI document, as FastAPI's inline script does."""
    return (
        "window.ui = SwaggerUIBundle({\n"
        f"  url: {json.dumps(openapi_url)},\n"
        '  dom_id: "#swagger-ui",\n'
        '  layout: "BaseLayout",\n'
        "  deepLinking: true,\n"
        "  showExtensions: true,\n"
        "  showCommonExtensions: true,\n"
        "  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],\n"
        "});\n"
    )


def add_offline_docs(app: FastAPI) -> None:
    """Serve ``/docs`` with locally served Swagger UI assets (create the app with
    ``docs_url=None, redoc_url=None``)."""
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="swagger-ui-assets")
    page = docs_html(f"{app.title} - docs")
    script = init_script(app.openapi_url or "/openapi.json")

    async def docs() -> HTMLResponse:
        return HTMLResponse(page)

    async def init() -> Response:
        return Response(script, media_type="text/javascript")

    app.add_api_route("/docs", docs, include_in_schema=False, response_class=HTMLResponse)
    app.add_api_route(INIT_SCRIPT, init, include_in_schema=False)
