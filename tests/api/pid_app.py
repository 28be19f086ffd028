"""ASGI app factories for the serving tests: one answers with its worker's process id."""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route


def _pid(_: Request) -> PlainTextResponse:
    return PlainTextResponse(str(os.getpid()))


def app() -> Starlette:
    return Starlette(routes=[Route("/", _pid)])


def broken() -> Starlette:
    raise RuntimeError("this app cannot be built")
