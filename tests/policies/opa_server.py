"""An OPA-compatible test server: a test double that speaks OPA's REST Data API.

It is not OPA's server, but it answers the parts of OPA's API the hub uses as OPA v1 does, and
it evaluates with the real OPA v1.20.2 evaluator (``opa_bindings``) loaded with the shipped
policies and data::

    POST /v1/data/{path}  {"input": ...}   200 {"result": <value>, "decision_id": "<uuid>"}
                                           200 {"decision_id": "<uuid>"}      (undefined)
    malformed JSON body                    400 {"code": "invalid_parameter", "message": ...}
    no "input" key                         200 as above, plus OPA's "warning" object
    evaluation error                       500 {"code": "internal_error", "message": ...}
    missing or wrong bearer token          401 {"code": "unauthorized", "message": ...}
    GET /health                            200 {}

Limits: path segments must be Rego identifiers, and ``{"input": null}`` is treated like a
request without input. Failure tests turn the knobs in ``app.state.knobs`` (:class:`OpaKnobs`)
on one running server instead of starting another::

    app = opa_server_app()
    with SourceServer(app, host="127.0.0.1", port=0) as server:
        knobs(app).fail_next = 1        # the next request gets a 500, later ones are answered
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from opa_bindings import OpaEngine, OpaError, OpaUndefinedError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import policies

_SEGMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Answer(Enum):
    """What the data API answers with, when it answers 200."""

    EVALUATE = "evaluate"
    """The real evaluator's result (the default)."""
    UNDEFINED = "undefined"
    """No ``result``, as for an undefined document."""
    FIXED = "fixed"
    """``OpaKnobs.fixed_result`` as the result, e.g. a malformed decision."""
    NOT_JSON = "not_json"
    """A 200 whose body is not JSON."""


@dataclass
class OpaKnobs:
    """Failure knobs; the test thread sets them while the server thread reads them."""

    answer: Answer = Answer.EVALUATE
    fixed_result: Any = None
    delay: float = 0.0
    """Seconds every data request waits before it is answered."""
    slow_next: int = 0
    """The next this many data requests wait ``slow_delay`` seconds."""
    slow_delay: float = 1.0
    fail_status: int | None = None
    """Answer every data request with this status, in OPA's error shape."""
    fail_next: int = 0
    """The next this many data requests are answered 500."""
    token: str | None = None
    """Require ``Authorization: Bearer <token>``, as ``opa run --authentication=token``."""
    requests: int = 0
    """Data requests received so far."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reset(self) -> None:
        """Back to answering every request normally, with the request count at zero."""
        with self._lock:
            self.answer, self.fixed_result, self.delay = Answer.EVALUATE, None, 0.0
            self.slow_next, self.fail_status, self.fail_next = 0, None, 0
            self.token, self.requests = None, 0

    def _take(self) -> tuple[float, int | None]:
        # Count the request and use up one slow/failing turn, atomically.
        with self._lock:
            self.requests += 1
            delay, status = self.delay, self.fail_status
            if self.slow_next > 0:
                self.slow_next -= 1
                delay += self.slow_delay
            if self.fail_next > 0:
                self.fail_next -= 1
                status = 500
            return delay, status


def knobs(app: Starlette) -> OpaKnobs:
    """The knobs of an app made by :func:`opa_server_app`."""
    value = app.state.knobs
    assert isinstance(value, OpaKnobs)
    return value


def opa_server_app(
    *,
    modules: Sequence[tuple[str, str]] | None = None,
    data: dict[str, Any] | None = None,
) -> Starlette:
    """The OPA-compatible app over ``modules`` and ``data`` (default: the shipped policies).

    The evaluator is loaded now, so broken policies fail here; it is closed at shutdown.

    Raises:
        OpaError: the policies or data do not load.
    """
    engine = OpaEngine()
    try:
        for path, text in policies.policy_modules() if modules is None else modules:
            engine.add_policy(path, text)
        engine.add_data(policies.policy_data() if data is None else data)
    except BaseException:
        engine.close()
        raise

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            engine.close()

    async def data_api(request: Request) -> Response:
        return await _data_api(request, engine)

    async def health(_request: Request) -> Response:
        return JSONResponse({})

    app = Starlette(
        routes=[
            Route("/v1/data", data_api, methods=["POST"]),
            Route("/v1/data/{path:path}", data_api, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.knobs = OpaKnobs()
    return app


async def _data_api(request: Request, engine: OpaEngine) -> Response:
    settings = knobs(request.app)
    delay, fail_status = settings._take()
    if delay:
        await asyncio.sleep(delay)
    token = settings.token
    if token is not None and request.headers.get("authorization") != f"Bearer {token}":
        return _error(401, "unauthorized", "missing or invalid bearer token")
    if fail_status is not None:
        return _error(fail_status, "internal_error", "failing on purpose (test knob)")
    segments = [s for s in request.path_params.get("path", "").split("/") if s]
    if not all(_SEGMENT.match(segment) for segment in segments):
        return _error(400, "invalid_parameter", "path segments must be Rego identifiers")
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        return _error(400, "invalid_parameter", f"body contains malformed input document: {exc}")
    if not isinstance(body, dict):
        return _error(400, "invalid_parameter", "body contains malformed input document")
    answer: dict[str, Any] = {"decision_id": str(uuid.uuid4())}
    if "input" not in body:
        answer["warning"] = {
            "code": "api_usage_warning",
            "message": "'input' key missing from the request",
        }
    if settings.answer is Answer.NOT_JSON:
        return Response(b"<html>not json</html>", media_type="text/html")
    if settings.answer is Answer.FIXED:
        return JSONResponse({"result": settings.fixed_result, **answer})
    if settings.answer is Answer.UNDEFINED:
        return JSONResponse(answer)
    try:
        result = await run_in_threadpool(
            engine.eval_document, ".".join(segments), body.get("input")
        )
    except OpaUndefinedError:
        return JSONResponse(answer)
    except OpaError as exc:
        return _error(500, "internal_error", exc.message)
    return JSONResponse({"result": result, **answer})


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)
