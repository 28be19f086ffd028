"""Named dependencies: a handler's signature lists what it needs.

The ones that only hand over something the app already holds are `async`: FastAPI runs a plain
`def` dependency on a worker thread, and a thread hop for each of them cost more than the
rest of the dependency. Those that touch the database stay plain `def`, off the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from hub.api.ratelimit import RateLimiter
from hub.api.state import HubState
from hub.config import Settings
from hub.errors import Unauthenticated
from hub.policy import PolicyEngine
from hub.services.auth import principal_from_access_token
from hub.services.principals import Principal
from hub.services.sources import ConnectorRegistry
from keys import KeyRing


async def get_state(request: Request) -> HubState:
    state: HubState = request.app.state.hub
    return state


StateDep = Annotated[HubState, Depends(get_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    with Session(state.engine, expire_on_commit=False) as session:
        try:
            yield session
        finally:
            # Services commit what must last; anything left over is dropped.
            session.rollback()


SessionDep = Annotated[Session, Depends(get_session)]


async def get_settings(state: StateDep) -> Settings:
    return state.settings


async def get_keyring(state: StateDep) -> KeyRing:
    return state.keyring


async def get_policy(state: StateDep) -> PolicyEngine:
    return state.policy


async def get_connectors(state: StateDep) -> ConnectorRegistry:
    return state.connectors


async def get_now(state: StateDep) -> datetime:
    return state.clock()


# A record id in a path (uuids, panel slugs, audit pseudonyms are all far shorter): anything
# longer is refused by validation (422) before it reaches a query.
PathId = Annotated[str, Path(min_length=1, max_length=128)]

SettingsDep = Annotated[Settings, Depends(get_settings)]
KeyRingDep = Annotated[KeyRing, Depends(get_keyring)]
PolicyDep = Annotated[PolicyEngine, Depends(get_policy)]
ConnectorsDep = Annotated[ConnectorRegistry, Depends(get_connectors)]
NowDep = Annotated[datetime, Depends(get_now)]


# Declared as a security scheme so the OpenAPI document says which operations need a token;
# a missing or malformed header is answered by `get_principal` in the one error shape.
_bearer_scheme = HTTPBearer(
    auto_error=False, description="A hub access token from POST /v1/token or POST /v1/login"
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)]


async def get_rate_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


RateLimiterDep = Annotated[RateLimiter, Depends(get_rate_limiter)]


def get_principal(
    credentials: BearerDep,
    session: SessionDep,
    keyring: KeyRingDep,
    settings: SettingsDep,
    now: NowDep,
    limiter: RateLimiterDep,
) -> Principal:
    """The verified caller; an agency client also spends one request of its rate limit.

    Raises Unauthenticated for a missing, malformed or invalid token, RateLimited when the
    client has used up its allowance.
    """
    if credentials is None or not credentials.credentials.strip():
        raise Unauthenticated("a bearer access token is required")
    # The token check hands its pooled connection back before it returns: the handler may
    # still wait for a free request thread, and connections held by waiting requests would
    # starve the running ones and the audit writer (a pool-timeout deadlock).
    principal = principal_from_access_token(
        session=session,
        keyring=keyring,
        settings=settings,
        token=credentials.credentials.strip(),
        now=now,
    )
    if principal.kind == "agency":
        limiter.take(principal.subject)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]

Clock = Callable[[], datetime]
