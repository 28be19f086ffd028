"""Refuse oversized bodies and wrong content types before any handler runs."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

FORM_PATHS = frozenset({"/v1/token"})


class RequestLimits:
    """Pure ASGI middleware: bodies over `max_body_bytes` get 413, a wrong content type 415.

    The body is read once (it is small by construction) and replayed to the application.
    """

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, form_prefixes: tuple[str, ...] = ()
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # Paths under these (the web UI's pages) take HTML form posts instead of JSON.
        self.form_prefixes = form_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await _reject(send, 413, "too_large", f"the body exceeds {self.max_body_bytes} bytes")
            return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body_bytes:
                await _reject(
                    send, 413, "too_large", f"the body exceeds {self.max_body_bytes} bytes"
                )
                return
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        expected = (
            "application/x-www-form-urlencoded"
            if scope["path"] in FORM_PATHS or _under(scope["path"], self.form_prefixes)
            else "application/json"
        )
        if body and media_type != expected:
            await _reject(send, 415, "unsupported_media_type", f"the body must be {expected}")
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


async def _reject(send: Send, status: int, code: str, message: str) -> None:
    payload: dict[str, Any] = {"error": {"code": code, "message": message, "details": None}}
    content = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})
