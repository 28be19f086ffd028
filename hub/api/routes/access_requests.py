"""Access requests: an agency asks for a grant; the coordinator decides."""

from __future__ import annotations

from fastapi import APIRouter, status

from hub.api.deps import CurrentPrincipal, KeyRingDep, NowDep, PathId, SessionDep
from hub.schemas import (
    AccessRequestCreate,
    AccessRequestDecision,
    AccessRequestPublic,
    AccessRequestsPublic,
)
from hub.services import access_requests

router = APIRouter(tags=["access requests"])


@router.post(
    "/v1/cases/{case_id}/access-requests",
    response_model=AccessRequestPublic,
    status_code=status.HTTP_201_CREATED,
)
def request_access(
    case_id: PathId,
    body: AccessRequestCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    keyring: KeyRingDep,
    now: NowDep,
) -> AccessRequestPublic:
    """An agency system of the panel asks the coordinator for access for one purpose."""
    return access_requests.create_request(
        session=session,
        keyring=keyring,
        principal=principal,
        case_id=case_id,
        request=body,
        now=now,
    )


@router.get("/v1/cases/{case_id}/access-requests", response_model=AccessRequestsPublic)
def list_access_requests(
    case_id: PathId, principal: CurrentPrincipal, session: SessionDep, keyring: KeyRingDep
) -> AccessRequestsPublic:
    """Newest first; an agency sees only its own requests."""
    return access_requests.list_requests(
        session=session, keyring=keyring, principal=principal, case_id=case_id
    )


@router.post("/v1/access-requests/{request_id}/decision", response_model=AccessRequestPublic)
def decide_access_request(
    request_id: PathId,
    body: AccessRequestDecision,
    principal: CurrentPrincipal,
    session: SessionDep,
    keyring: KeyRingDep,
    now: NowDep,
) -> AccessRequestPublic:
    """Approve (with not_before and expires_at; creates the grant) or refuse with a reason."""
    return access_requests.decide_request(
        session=session,
        keyring=keyring,
        principal=principal,
        request_id=request_id,
        decision=body,
        now=now,
    )
