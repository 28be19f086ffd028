"""One error shape for every failure: `{"error": {"code", "message", "details"}}`.

Validation details name the field and the rule, never the value sent, so nothing a client
posted about a person is echoed back or logged.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub import errors
from hub.services.referrals import RefusedGround

log = logging.getLogger("hub.api")

STATUS: dict[type[errors.HubError], int] = {
    errors.BadRequest: 422,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PolicyDenied: 403,
    errors.AuditUnavailable: 503,
    errors.VerificationError: 409,
}


def error_response(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        status_code=status,
        content={"error": {"code": code, "message": message, "details": details}},
        headers=headers,
    )


def _status_for(exc: errors.HubError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


async def _hub_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.HubError)
    if isinstance(exc, errors.PolicyDenied):
        # DESIGN section 10: a denial carries `error.reasons` so a client can act on each code.
        body = {
            "error": {
                "code": exc.code,
                "message": exc.message,
                "details": exc.details,
                "reasons": exc.reasons,
            }
        }
        return JSONResponse(status_code=403, content=body)
    return error_response(_status_for(exc), exc.code, exc.message, exc.details)


async def _refused_ground(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RefusedGround)
    return error_response(422, "refused_ground", str(exc), {"field": exc.field})


async def _validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"loc": [str(p) for p in e.get("loc", ())], "type": e.get("type"), "msg": e.get("msg")}
        for e in exc.errors()
    ]
    if any(p["type"] == "json_invalid" for p in problems):
        return error_response(400, "malformed_json", "the request body is not valid JSON")
    return error_response(422, "invalid_request", "the request does not match the schema", problems)


async def _http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {
        404: "not_found",
        405: "method_not_allowed",
        413: "too_large",
        415: "unsupported_media_type",
    }
    return error_response(
        exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail)
    )


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    # Log the type only: an exception's text may carry data from the request.
    log.error("unhandled %s", type(exc).__name__)
    return error_response(500, "internal_error", "the hub could not complete the request")


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.HubError, _hub_error)
    app.add_exception_handler(RefusedGround, _refused_ground)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
