"""The audit log, for data protection officers; and the hub's public keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from hub.api.deps import CurrentPrincipal, KeyRingDep, SessionDep
from hub.errors import Forbidden
from hub.schemas import AuditVerifyPublic
from hub.services import audit
from hub.services.principals import DPO

router = APIRouter(tags=["audit"])


@router.get("/v1/audit/verify", response_model=AuditVerifyPublic)
def verify(principal: CurrentPrincipal, session: SessionDep) -> AuditVerifyPublic:
    """Recompute the whole hash chain; 409 naming the first bad entry if it does not hold."""
    if not principal.has_role(DPO):
        raise Forbidden("only a data protection officer may verify the log")
    report = audit.verify(session=session)
    return AuditVerifyPublic(ok=True, entries=report.entries, head_hash=report.head_hash)


@router.get("/.well-known/jwks.json")
def jwks(keyring: KeyRingDep) -> dict[str, Any]:
    """The keys that sign access tokens and receipts."""
    return {"keys": [keyring.token_signing_public_jwk()]}


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
