"""Consents and grants: what covers a disclosure."""

from __future__ import annotations

from fastapi import APIRouter, status

from hub.api.deps import CurrentPrincipal, KeyRingDep, NowDep, SessionDep
from hub.schemas import (
    ConsentCreate,
    ConsentPublic,
    ConsentWithdraw,
    GrantCreate,
    GrantPublic,
    GrantRevoke,
)
from hub.services import consents, grants

router = APIRouter(tags=["consents and grants"])


@router.post(
    "/v1/cases/{case_id}/consents",
    response_model=ConsentPublic,
    status_code=status.HTTP_201_CREATED,
)
def record_consent(
    case_id: str,
    body: ConsentCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    keyring: KeyRingDep,
    now: NowDep,
) -> ConsentPublic:
    return consents.record_consent(
        session=session,
        keyring=keyring,
        principal=principal,
        case_id=case_id,
        consent=body,
        now=now,
    )


@router.post("/v1/consents/{consent_id}/withdraw", response_model=ConsentPublic)
def withdraw_consent(
    consent_id: str,
    body: ConsentWithdraw,
    principal: CurrentPrincipal,
    session: SessionDep,
    keyring: KeyRingDep,
    now: NowDep,
) -> ConsentPublic:
    """Withdrawal takes effect at once: a disclosure decided after it is denied."""
    return consents.withdraw_consent(
        session=session,
        keyring=keyring,
        principal=principal,
        consent_id=consent_id,
        withdrawal=body,
        now=now,
    )


@router.post(
    "/v1/cases/{case_id}/grants", response_model=GrantPublic, status_code=status.HTTP_201_CREATED
)
def create_grant(
    case_id: str,
    body: GrantCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    keyring: KeyRingDep,
    now: NowDep,
) -> GrantPublic:
    return grants.create_grant(
        session=session, keyring=keyring, principal=principal, case_id=case_id, grant=body, now=now
    )


@router.post("/v1/grants/{grant_id}/revoke", response_model=GrantPublic)
def revoke_grant(
    grant_id: str,
    body: GrantRevoke,
    principal: CurrentPrincipal,
    session: SessionDep,
    keyring: KeyRingDep,
    now: NowDep,
) -> GrantPublic:
    return grants.revoke_grant(
        session=session,
        keyring=keyring,
        principal=principal,
        grant_id=grant_id,
        revocation=body,
        now=now,
    )
