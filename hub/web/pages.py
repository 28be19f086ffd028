"""How the web UI answers failures: pages, not JSON, for every path the UI owns.

A service's HubError becomes an error page with the status the API would give (4xx); a visitor
who is not signed in is redirected to /sign-in; a bad form field gets a 422 page naming the
field. Paths under /v1 and the rest of the API keep the JSON error shape.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub import errors
from hub.api.errors import STATUS
from hub.web import session as web_session
from hub.web.auth import SignInRequired
from hub.web.templating import NODE_MODULES, STATIC, VENDOR, render

PAGE_PREFIXES = ("/sign-in", "/sign-out", "/panel", "/dpo")
Handler = Callable[[Request, Any], Response | Awaitable[Response]]
AsyncHandler = Callable[[Request, Exception], Awaitable[Response]]


def is_page(request: Request) -> bool:
    path = request.url.path
    return path == "/" or any(path == p or path.startswith(p + "/") for p in PAGE_PREFIXES)


def status_for(exc: errors.HubError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


_TITLES = {
    400: "The request could not be used",
    401: "Not signed in",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed",
    409: "Not possible now",
    422: "Please check the form",
    503: "Temporarily unavailable",
}


def error_page(
    request: Request, status: int, message: str, details: list[str] | None = None
) -> Response:
    return render(
        request,
        "error.html",
        {
            "status": status,
            "heading": _TITLES.get(status, "Something went wrong"),
            "message": message,
            "details": details or [],
        },
        status_code=status,
    )


async def _delegate(original: Handler, request: Request, exc: Exception) -> Response:
    result = original(request, exc)
    return await result if inspect.isawaitable(result) else result


async def _sign_in_redirect(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    query: dict[str, str] = {}
    if exc.reason in ("idle", "expired"):
        query["ended"] = exc.reason
    if exc.next_path and exc.next_path != "/":
        query["next"] = exc.next_path
    target = "/sign-in" + ("?" + urlencode(query) if query else "")
    response = RedirectResponse(target, status_code=303)
    settings = request.app.state.hub.settings
    response.delete_cookie(
        web_session.cookie_name(settings),
        path="/",
        secure=settings.session_cookie_secure,
        httponly=True,
        samesite="strict",
    )
    return response


def _wrap_hub_error(original: Handler) -> AsyncHandler:
    async def handle(request: Request, exc: Exception) -> Response:
        if not is_page(request):
            return await _delegate(original, request, exc)
        assert isinstance(exc, errors.HubError)
        details = [str(r.get("message", r.get("code", ""))) for r in getattr(exc, "reasons", [])]
        return error_page(request, status_for(exc), exc.message, details)

    return handle


def _wrap_http(original: Handler) -> AsyncHandler:
    async def handle(request: Request, exc: Exception) -> Response:
        if not is_page(request):
            return await _delegate(original, request, exc)
        assert isinstance(exc, StarletteHTTPException)
        message = "There is no page at this address." if exc.status_code == 404 else str(exc.detail)
        return error_page(request, exc.status_code, message)

    return handle


def _wrap_validation(original: Handler) -> AsyncHandler:
    async def handle(request: Request, exc: Exception) -> Response:
        if not is_page(request):
            return await _delegate(original, request, exc)
        assert isinstance(exc, RequestValidationError)
        # Name the field and the rule, never the value typed.
        details = [
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'form'}: {e.get('msg')}"
            for e in exc.errors()
        ]
        return error_page(request, 422, "Some fields are missing or not valid.", details)

    return handle


async def vendor_asset(name: str) -> Response:
    relative = VENDOR.get(name)
    path = NODE_MODULES / relative if relative else None
    if path is None or not path.is_file():
        raise StarletteHTTPException(404, "asset not found")
    return FileResponse(path, media_type="text/javascript")


def install(app: FastAPI) -> None:
    """Serve assets and answer the UI's failures with pages. Call after `hub.api.errors`."""
    app.mount("/static", StaticFiles(directory=STATIC), name="web-static")
    app.add_api_route("/vendor/{name}", vendor_asset, include_in_schema=False)
    app.add_exception_handler(SignInRequired, _sign_in_redirect)
    for exc_type, wrap in (
        (errors.HubError, _wrap_hub_error),
        (StarletteHTTPException, _wrap_http),
        (RequestValidationError, _wrap_validation),
    ):
        original = app.exception_handlers[exc_type]
        app.add_exception_handler(exc_type, wrap(original))
