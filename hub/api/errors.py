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
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import InternalError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub import errors
from hub.api.ratelimit import RateLimited
from hub.services.referrals import RefusedGround
from keys import KeysError

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
    RateLimited: 429,
}


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str
    message: str
    details: Any
    # Only on a policy denial (403 `denied`): one machine code and human text per reason.
    reasons: list[dict[str, str]] | None = None


class ErrorPublic(BaseModel):
    """The one error shape, as the OpenAPI document describes it."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorBody


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    *,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
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
    if isinstance(exc, RateLimited):
        return error_response(
            429, exc.code, exc.message, exc.details, headers={"Retry-After": str(exc.retry_after)}
        )
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
        exc.status_code,
        codes.get(exc.status_code, "http_error"),
        str(exc.detail),
        headers=dict(exc.headers) if exc.headers else None,  # e.g. `Allow` on a 405
    )


async def _storage_down(_request: Request, exc: Exception) -> JSONResponse:
    # The database refused or went away (read-only, disk full, connection lost): whatever the
    # request was, it answers nothing but this, and the transaction is rolled back.
    log.error("database unavailable: %s", type(exc).__name__)
    return error_response(503, "storage_unavailable", "the hub's database is unavailable")


async def _keys_down(_request: Request, exc: Exception) -> JSONResponse:
    # The key store could not be read (or a stored value not decrypted): nothing is signed,
    # decrypted or disclosed without its keys.
    log.error("key store unavailable: %s", type(exc).__name__)
    return error_response(503, "keys_unavailable", "the hub's key store is unavailable")


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    # Log the type only: an exception's text may carry data from the request.
    log.error("unhandled %s", type(exc).__name__)
    return error_response(500, "internal_error", "the hub could not complete the request")


# What each error status means, for the OpenAPI document.
_ERROR_STATUSES = {
    "400": "malformed request (e.g. the body is not valid JSON)",
    "404": "no such record, or not visible to the caller",
    "409": "the record's state does not allow this now",
    "422": "the request does not match the schema; `details` names each field and rule",
    "503": "the audit log, database or key store is unavailable; nothing was disclosed",
}
_BODY_STATUSES = {
    "413": "the body is larger than the hub accepts",
    "415": "the body has the wrong content type",
}
_AUTH_STATUSES = {
    "401": "no, expired or forged access token",
    "403": "this role may not do this, or the policy denied it (`error.reasons`)",
    "429": "the agency client sent too many requests; retry after `Retry-After` seconds",
}
# Where credentials are exchanged for a token: wrong credentials are a 401 there too.
_CREDENTIAL_PATHS = frozenset({"/v1/token", "/v1/login"})


def _document_errors(app: FastAPI) -> None:
    """Replace FastAPI's own validation-error schema with the hub's one error shape and list
    the error statuses each operation can answer, so clients and fuzzers can rely on them."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        error_schema = ErrorPublic.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(error_schema.pop("$defs", {}))
        components["ErrorPublic"] = error_schema
        reference = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorPublic"}}}
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                statuses = dict(_ERROR_STATUSES)
                if method in ("post", "put", "patch"):
                    statuses |= _BODY_STATUSES
                if operation.get("security"):
                    statuses |= _AUTH_STATUSES
                if path in _CREDENTIAL_PATHS:
                    statuses["401"] = "the credentials are wrong, expired or replayed"
                responses = operation.setdefault("responses", {})
                for status, description in statuses.items():
                    documented = responses.get(status, {})
                    responses[status] = {
                        "description": documented.get("description", description),
                        "content": reference,
                    }
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    _document_errors(app)
    app.add_exception_handler(errors.HubError, _hub_error)
    app.add_exception_handler(RefusedGround, _refused_ground)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(OperationalError, _storage_down)
    app.add_exception_handler(InternalError, _storage_down)
    # Every pooled connection busy for longer than the pool's timeout: the database is, for
    # this request, as unavailable as if it were down.
    app.add_exception_handler(PoolTimeout, _storage_down)
    app.add_exception_handler(KeysError, _keys_down)
    app.add_exception_handler(Exception, _unexpected)
