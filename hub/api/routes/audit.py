"""The audit log: checkpoints, proofs and the log's public key for anyone the hub knows, full
verification for data protection officers; and the hub's public keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from hub.api.deps import CurrentPrincipal, KeyRingDep, SessionDep, SettingsDep
from hub.audit.public import ConsistencyProofPublic, InclusionProofPublic
from hub.errors import Forbidden, NotFound
from hub.schemas import AuditVerifyPublic
from hub.services import audit, audit_checkpoints, audit_proofs
from hub.services.principals import DPO

router = APIRouter(tags=["audit"])

_TEXT = "text/plain; charset=utf-8"


@router.get("/v1/audit/verify", response_model=AuditVerifyPublic)
def verify(
    principal: CurrentPrincipal, session: SessionDep, keyring: KeyRingDep, settings: SettingsDep
) -> AuditVerifyPublic:
    """Recompute the chain, the tree and every checkpoint's signature; 409 naming the first
    bad entry if the log does not hold."""
    if not principal.has_role(DPO):
        raise Forbidden("only a data protection officer may verify the log")
    keys, origin = audit_checkpoints.verifier_keys(keyring=keyring, settings=settings)
    report = audit.verify(session=session, keys=keys, origin=origin)
    return AuditVerifyPublic(ok=True, entries=report.entries, head_hash=report.head_hash)


@router.get(
    "/v1/audit/checkpoint",
    response_class=PlainTextResponse,
    responses={200: {"content": {_TEXT: {}}, "description": "C2SP tlog-checkpoint signed note"}},
)
def checkpoint(_principal: CurrentPrincipal, session: SessionDep) -> PlainTextResponse:
    """The latest signed checkpoint of the log (c2sp.org/tlog-checkpoint)."""
    latest = audit_checkpoints.latest(session=session)
    if latest is None:
        raise NotFound("no checkpoint has been made yet")
    return PlainTextResponse(latest.note, media_type=_TEXT, headers={"Cache-Control": "no-store"})


@router.get("/v1/audit/proofs/inclusion", response_model=InclusionProofPublic)
def inclusion_proof(
    _principal: CurrentPrincipal,
    session: SessionDep,
    index: Annotated[int, Query(ge=0, description="0-based leaf index (entry seq - 1)")],
    tree_size: Annotated[int, Query(ge=1, description="size of a checkpointed tree")],
) -> InclusionProofPublic:
    """RFC 9162 inclusion proof of one leaf in the tree of `tree_size` leaves."""
    return audit_proofs.inclusion(session=session, index=index, tree_size=tree_size)


@router.get("/v1/audit/proofs/consistency", response_model=ConsistencyProofPublic)
def consistency_proof(
    _principal: CurrentPrincipal,
    session: SessionDep,
    first: Annotated[int, Query(ge=0, description="the older tree size")],
    second: Annotated[int, Query(ge=0, description="the newer tree size")],
) -> ConsistencyProofPublic:
    """RFC 9162 proof that the tree of `second` leaves extends the tree of `first`."""
    return audit_proofs.consistency(session=session, first=first, second=second)


@router.get(
    "/v1/audit/key",
    response_class=PlainTextResponse,
    responses={200: {"content": {_TEXT: {}}, "description": "signed-note verifier key"}},
)
def log_key(keyring: KeyRingDep, settings: SettingsDep) -> PlainTextResponse:
    """The key that verifies checkpoints and receipts, as a signed-note verifier key
    (`<origin>+<key ID>+<base64 key>`)."""
    signer = audit_checkpoints.signer_for(keyring=keyring, settings=settings)
    return PlainTextResponse(signer.verifier_key.to_text() + "\n", media_type=_TEXT)


@router.get("/.well-known/jwks.json")
def jwks(keyring: KeyRingDep) -> dict[str, Any]:
    """The keys that sign access tokens and receipts: the current one first, then previous
    ones, which still verify what they signed before a rotation."""
    return {"keys": keyring.token_signing_public_jwks()}


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
