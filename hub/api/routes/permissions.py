"""Consents and grants: what covers a disclosure."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse

from hub.api.deps import CurrentPrincipal, KeyRingDep, NowDep, PathId, SessionDep, SettingsDep
from hub.schemas import (
    ConsentCreate,
    ConsentPublic,
    ConsentReceiptPublic,
    ConsentsPublic,
    ConsentWithdraw,
    GrantCreate,
    GrantPublic,
    GrantRevoke,
)
from hub.services import consent_receipts, consents, grants

router = APIRouter(tags=["consents and grants"])


@router.post(
    "/v1/cases/{case_id}/consents",
    response_model=ConsentPublic,
    status_code=status.HTTP_201_CREATED,
)
def record_consent(
    case_id: PathId,
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
    consent_id: PathId,
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
    case_id: PathId,
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
    grant_id: PathId,
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


@router.get("/v1/cases/{case_id}/consents", response_model=ConsentsPublic)
def list_consents(
    case_id: PathId,
    principal: CurrentPrincipal,
    session: SessionDep,
    keyring: KeyRingDep,
    now: NowDep,
) -> ConsentsPublic:
    """Every consent of the case (given, refused, withdrawn, expired, superseded) with its
    history, newest first."""
    return consents.list_consents(
        session=session, keyring=keyring, principal=principal, case_id=case_id, now=now
    )


@router.get(
    "/v1/consents/{consent_id}/receipt",
    response_model=ConsentReceiptPublic,
    responses={200: {"content": {"text/html": {}}}},
)
def consent_receipt(
    consent_id: PathId,
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    keyring: KeyRingDep,
    settings: SettingsDep,
    now: NowDep,
) -> ConsentReceiptPublic | HTMLResponse:
    """The signed receipt (JSON), or with `Accept: text/html` a printable page for the person."""
    token, claims = consent_receipts.issue_receipt(
        session=session,
        keyring=keyring,
        principal=principal,
        consent_id=consent_id,
        issuer=settings.public_url,
        now=now,
    )
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(consent_receipts.receipt_page(claims, token))
    return ConsentReceiptPublic(consent_id=consent_id, receipt=token)
