"""Oversight for data protection officers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Query

from hub.api.deps import CurrentPrincipal, KeyRingDep, PathId, SessionDep
from hub.schemas import OversightDecisionsPublic
from hub.services import oversight

router = APIRouter(tags=["oversight"])


@router.get("/v1/oversight/disclosures", response_model=OversightDecisionsPublic)
def list_disclosures(
    principal: CurrentPrincipal,
    session: SessionDep,
    keyring: KeyRingDep,
    agency: str | None = Query(default=None, max_length=64),
    purpose: str | None = Query(default=None, max_length=64),
    case_id: PathId | None = Query(default=None, max_length=36),
    decision: Literal["allow", "deny"] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(default=50, ge=1, le=oversight.MAX_PAGE),
    offset: int = Query(default=0, ge=0),
) -> OversightDecisionsPublic:
    """Every disclosure and denial of the DPO's panel, newest first, with filters and paging."""
    return oversight.list_decisions(
        session=session,
        keyring=keyring,
        principal=principal,
        agency=agency,
        purpose=purpose,
        case_id=case_id,
        decision=decision,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/v1/oversight/subjects/{subject_ref}/disclosures", response_model=OversightDecisionsPublic
)
def subject_disclosures(
    subject_ref: PathId, principal: CurrentPrincipal, session: SessionDep, keyring: KeyRingDep
) -> OversightDecisionsPublic:
    """One person's disclosure history (subject access), by the audit log's pseudonym."""
    return oversight.subject_history(
        session=session, keyring=keyring, principal=principal, subject_ref=subject_ref
    )
