"""Interactive API documentation at /docs, served from the project's own assets.

FastAPI's default page loads Swagger UI from a CDN and starts it with an inline script; the hub
must work without the public internet and its CSP forbids inline scripts, so the page, the
Swagger UI files (from the `swagger-ui-bundle` package) and a small starter script are all
served from here.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs-assets"

_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Inter-agency hub API</title>
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script src="/docs-start.js"></script>
</body>
</html>
"""
_START = 'window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});\n'

router = APIRouter(include_in_schema=False)


@router.get("/docs")
def docs_page() -> HTMLResponse:
    return HTMLResponse(_PAGE)


@router.get("/docs-start.js")
def docs_start() -> Response:
    return Response(_START, media_type="text/javascript")


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")
