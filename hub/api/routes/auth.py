"""Tokens: agency systems by client assertion (RFC 7523), people by password."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from jose import JWTError, jwt
from sqlmodel import Session

from hub.api.deps import KeyRingDep, NowDep, SessionDep, SettingsDep
from hub.api.errors import ErrorPublic
from hub.api.ratelimit import TokenRateLimits
from hub.errors import BadRequest
from hub.schemas import LoginCreate, TokenPublic
from hub.services import auth
from hub.storage.models import ApiClient

router = APIRouter(tags=["authentication"])


async def _form(request: Request) -> dict[str, str]:
    try:
        parsed = parse_qs((await request.body()).decode(), strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise BadRequest("the form body is not UTF-8") from exc
    if any(len(values) != 1 for values in parsed.values()):
        raise BadRequest("each form field must appear once")
    return {key: values[0] for key, values in parsed.items()}


FormDep = Annotated[dict[str, str], Depends(_form)]


def _registered_client(session: Session, assertion: str) -> str | None:
    """The active client the assertion names, read without checking its signature: only to
    pick the rate-limit bucket, so nothing here is trusted beyond that."""
    if not assertion or len(assertion) > auth.MAX_TOKEN_CHARS:
        return None
    try:
        client_id = jwt.get_unverified_claims(assertion).get("iss")
    except JWTError:
        return None
    if not isinstance(client_id, str) or not client_id:
        return None
    client = session.get(ApiClient, client_id)
    return client_id if client is not None and client.active else None


def _token_allowance(request: Request, form: FormDep, session: SessionDep) -> None:
    """Spend one token request before the assertion's signature is checked (RateLimited)."""
    limits: TokenRateLimits = request.app.state.token_rate_limits
    limits.take(
        registered_client=_registered_client(session, form.get("client_assertion", "")),
        remote_host=request.client.host if request.client else None,
    )


# The form is parsed by hand (each field exactly once), so its schema is written out here for
# the OpenAPI document.
_TOKEN_FORM = {
    "required": True,
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "required": ["grant_type", "client_assertion_type", "client_assertion"],
                "properties": {
                    "grant_type": {"type": "string", "enum": ["client_credentials"]},
                    "client_assertion_type": {
                        "type": "string",
                        "enum": [auth.CLIENT_ASSERTION_TYPE],
                    },
                    "client_assertion": {
                        "type": "string",
                        "description": "a JWT signed with one of the client's registered keys",
                        "maxLength": auth.MAX_TOKEN_CHARS,
                    },
                },
            }
        }
    },
}


@router.post(
    "/v1/token",
    response_model=TokenPublic,
    openapi_extra={"requestBody": _TOKEN_FORM},
    dependencies=[Depends(_token_allowance)],
    responses={
        429: {
            "model": ErrorPublic,
            "description": "too many token requests from this client (or, for assertions "
            "naming no registered client, from this address); retry after `Retry-After` seconds",
        }
    },
)
def token(
    form: FormDep, session: SessionDep, keyring: KeyRingDep, settings: SettingsDep, now: NowDep
) -> TokenPublic:
    """Exchange a signed client assertion for a short-lived access token.

    Form fields: `grant_type=client_credentials`, `client_assertion_type` (the RFC 7523
    JWT bearer type) and `client_assertion`.
    """
    return auth.exchange_client_assertion(
        session=session, keyring=keyring, settings=settings, form=form, now=now
    )


@router.post("/v1/login", response_model=TokenPublic)
def login(
    body: LoginCreate, session: SessionDep, keyring: KeyRingDep, settings: SettingsDep, now: NowDep
) -> TokenPublic:
    """A person's bearer token for scripts."""
    return auth.login(
        session=session,
        keyring=keyring,
        settings=settings,
        username=body.username,
        password=body.password,
        now=now,
    )
