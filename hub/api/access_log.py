"""One access-log line per request, with the route's template instead of its path.

Paths carry case ids and pseudonyms (`/v1/oversight/subjects/{subject_ref}/disclosures`), and
query strings carry search terms; a pseudonym is still personal data. The line names the
matched route's template (`/v1/cases/{case_id}/disclosures`), never the values in it, and
leaves the query string out; an unmatched path is logged as `(no route)`, since whatever was
typed there may be a name. `hub serve` turns uvicorn's own access log off in favour of this.
"""

from __future__ import annotations

import logging
import time

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("hub.access")

UNMATCHED = "(no route)"


def route_template(scope: Scope) -> str:
    """The template of the route that handled the request, or UNMATCHED."""
    route = scope.get("route")
    path = getattr(route, "path", None) if isinstance(route, BaseRoute) else None
    return path if isinstance(path, str) else UNMATCHED


class AccessLog:
    """Pure ASGI middleware: log method, route template, status and duration."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app fails before it starts an answer

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            log.info(
                "%s %s %d %.1fms",
                scope["method"],
                route_template(scope),
                status,
                (time.perf_counter() - started) * 1000,
            )
