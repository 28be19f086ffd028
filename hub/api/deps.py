"""Named dependencies: a handler's signature lists what it needs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from hub.api.state import HubState
from hub.config import Settings
from hub.errors import Unauthenticated
from hub.policy import PolicyEngine
from hub.services.auth import principal_from_access_token
from hub.services.principals import Principal
from hub.services.sources import ConnectorRegistry
from keys import KeyRing


def get_state(request: Request) -> HubState:
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


def get_settings(state: StateDep) -> Settings:
    return state.settings


def get_keyring(state: StateDep) -> KeyRing:
    return state.keyring


def get_policy(state: StateDep) -> PolicyEngine:
    return state.policy


def get_connectors(state: StateDep) -> ConnectorRegistry:
    return state.connectors


def get_now(state: StateDep) -> datetime:
    return state.clock()


SettingsDep = Annotated[Settings, Depends(get_settings)]
KeyRingDep = Annotated[KeyRing, Depends(get_keyring)]
PolicyDep = Annotated[PolicyEngine, Depends(get_policy)]
ConnectorsDep = Annotated[ConnectorRegistry, Depends(get_connectors)]
NowDep = Annotated[datetime, Depends(get_now)]


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("a bearer access token is required")
    return token.strip()


def get_principal(
    request: Request, session: SessionDep, keyring: KeyRingDep, settings: SettingsDep, now: NowDep
) -> Principal:
    return principal_from_access_token(
        session=session, keyring=keyring, settings=settings, token=_bearer(request), now=now
    )


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]

Clock = Callable[[], datetime]
