"""The web UI for people: server-rendered pages for coordinators (/panel) and DPOs (/dpo).

`install(app)` mounts the pages, their assets and their error pages into the API's app; the JSON
API under /v1 is unchanged.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from hub.web import pages
from hub.web.routes import auth, dpo, panel

# Paths whose POST bodies are HTML forms (application/x-www-form-urlencoded), not JSON.
FORM_PREFIXES = pages.PAGE_PREFIXES

router = APIRouter(include_in_schema=False)
router.include_router(auth.router)
router.include_router(panel.router)
router.include_router(dpo.router)


def install(app: FastAPI) -> None:
    """Add the pages; call after `hub.api.errors.install`, whose handlers it wraps."""
    pages.install(app)
    app.include_router(router)


__all__ = ["FORM_PREFIXES", "install", "router"]
