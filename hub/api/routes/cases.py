"""Referrals and cases."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from hub.api.deps import CurrentPrincipal, KeyRingDep, NowDep, PathId, SessionDep
from hub.schemas import CasePublic, ReferralCreate, TransitionCreate
from hub.services import cases, referrals

router = APIRouter(tags=["cases"])


@router.post("/v1/referrals", response_model=CasePublic, status_code=status.HTTP_201_CREATED)
def make_referral(
    body: ReferralCreate,
    response: Response,
    principal: CurrentPrincipal,
    session: SessionDep,
    keyring: KeyRingDep,
    now: NowDep,
) -> CasePublic:
    """Refer a person to a panel. A person with an open case there is linked, not duplicated
    (200 instead of 201)."""
    case, created = referrals.create_referral(
        session=session, keyring=keyring, principal=principal, referral=body, now=now
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return cases.case_view(keyring=keyring, principal=principal, case=case)


@router.get("/v1/cases/{case_id}", response_model=CasePublic)
def read_case(
    case_id: PathId, principal: CurrentPrincipal, session: SessionDep, keyring: KeyRingDep
) -> CasePublic:
    return cases.get_case(session=session, keyring=keyring, principal=principal, case_id=case_id)


@router.post("/v1/cases/{case_id}/transitions", response_model=CasePublic)
def move_case(
    case_id: PathId,
    body: TransitionCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    keyring: KeyRingDep,
    now: NowDep,
) -> CasePublic:
    """A coordinator moves the case to its next stage, naming lead and designated agencies."""
    return cases.transition(
        session=session, keyring=keyring, principal=principal, case_id=case_id, change=body, now=now
    )
