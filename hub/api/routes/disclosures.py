"""The disclosure request: the hub's reason to exist."""

from __future__ import annotations

from fastapi import APIRouter

from hub.api.deps import (
    ConnectorsDep,
    CurrentPrincipal,
    KeyRingDep,
    NowDep,
    PathId,
    PolicyDep,
    SessionDep,
    SettingsDep,
)
from hub.schemas import DisclosureCreate, DisclosurePublic
from hub.services.disclosures import Deps, request_disclosure

router = APIRouter(tags=["disclosures"])


@router.post(
    "/v1/cases/{case_id}/disclosures",
    response_model=DisclosurePublic,
    responses={403: {"description": "denied by policy; `error.reasons` says why"}},
)
def disclose(
    case_id: PathId,
    body: DisclosureCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    keyring: KeyRingDep,
    policy: PolicyDep,
    connectors: ConnectorsDep,
    settings: SettingsDep,
    now: NowDep,
) -> DisclosurePublic:
    """Ask for case data for one purpose. Only permitted categories come back, with the
    subject as a pseudonym of the caller's own domain and a signed receipt."""
    deps = Deps(
        session=session, keyring=keyring, policy=policy, connectors=connectors, settings=settings
    )
    return request_disclosure(
        deps=deps, principal=principal, case_id=case_id, request=body, now=now
    )
