"""Pseudonyms after a rotation, near matches for the coordinator, and re-identification."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import select

from hub.api.deps import (
    CurrentPrincipal,
    KeyRingDep,
    NowDep,
    PathId,
    SessionDep,
    SettingsDep,
)
from hub.errors import NotFound
from hub.services import audit, pseudonyms, reidentification, subjects
from hub.services.access import require_coordinator, visible_case
from hub.storage.models import PossibleMatch

router = APIRouter(tags=["identities"])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PseudonymCurrentPublic(BaseModel):
    pseudonym: str
    version: str
    previous: str


class ReidentifyCreate(_Strict):
    reason_code: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=2000)
    request_id: str | None = Field(default=None, max_length=36)


class ReidentificationPublic(BaseModel):
    status: Literal["granted", "pending", "approved"]
    request_id: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    date_of_birth: date | None = None


class PossibleMatchPublic(BaseModel):
    id: str
    candidate: str  # the other subject, as a pseudonym of the panel's domain
    differing_field: str
    status: str


class PossibleMatchDecision(_Strict):
    decision: Literal["confirmed", "rejected"]


@router.get("/v1/pseudonyms/{pseudonym}/current", response_model=PseudonymCurrentPublic)
def current_pseudonym(
    pseudonym: PathId,
    principal: CurrentPrincipal,
    session: SessionDep,
    keyring: KeyRingDep,
    settings: SettingsDep,
    now: NowDep,
) -> PseudonymCurrentPublic:
    """The current form of one of the caller's own (possibly older) pseudonyms."""
    found = pseudonyms.current_form(
        session=session,
        keyring=keyring,
        principal=principal,
        pseudonym=pseudonym,
        grace=timedelta(days=settings.pseudonym_grace_days),
        now=now,
    )
    return PseudonymCurrentPublic(**found)


@router.post("/v1/cases/{case_id}/reidentify", response_model=ReidentificationPublic)
def reidentify(
    case_id: PathId,
    body: ReidentifyCreate,
    response: Response,
    principal: CurrentPrincipal,
    session: SessionDep,
    keyring: KeyRingDep,
    now: NowDep,
) -> ReidentificationPublic:
    """Who the case's subject is: at once for the coordinator of an open case, otherwise
    after a coordinator and a DPO approve (202 with a request id until then)."""
    outcome = reidentification.reidentify(
        session=session,
        keyring=keyring,
        principal=principal,
        case_id=case_id,
        reason_code=body.reason_code,
        reason=body.reason,
        request_id=body.request_id,
        now=now,
    )
    if outcome.status == "pending":
        response.status_code = status.HTTP_202_ACCEPTED
    return ReidentificationPublic(
        status="granted" if outcome.status == "granted" else "pending",
        request_id=outcome.request_id,
        given_name=outcome.given_name,
        family_name=outcome.family_name,
        date_of_birth=outcome.date_of_birth,
    )


@router.post("/v1/reidentifications/{request_id}/approve", response_model=ReidentificationPublic)
def approve_reidentification(
    request_id: PathId, principal: CurrentPrincipal, session: SessionDep, now: NowDep
) -> ReidentificationPublic:
    """Approve a re-identification request (a coordinator and a DPO, two people)."""
    request = reidentification.approve(
        session=session, principal=principal, request_id=request_id, now=now
    )
    return ReidentificationPublic(
        status="approved" if request.status == "approved" else "pending", request_id=request.id
    )


@router.get("/v1/cases/{case_id}/possible-matches", response_model=list[PossibleMatchPublic])
def possible_matches(
    case_id: PathId, principal: CurrentPrincipal, session: SessionDep, keyring: KeyRingDep
) -> list[PossibleMatchPublic]:
    """Subjects that differ from this case's in one field, for the coordinator to decide."""
    case = visible_case(session=session, principal=principal, case_id=case_id)
    require_coordinator(principal=principal, case=case)
    rows = session.exec(select(PossibleMatch).where(PossibleMatch.case_id == case.id)).all()
    return [
        PossibleMatchPublic(
            id=row.id,
            candidate=subjects.pseudonym_for(
                keyring,
                domain=subjects.panel_domain(case.panel_id),
                subject_id=row.candidate_subject_id,
            ),
            differing_field=row.differing_field,
            status=row.status,
        )
        for row in rows
    ]


@router.post("/v1/possible-matches/{match_id}", response_model=PossibleMatchPublic)
def decide_possible_match(
    match_id: PathId,
    body: PossibleMatchDecision,
    principal: CurrentPrincipal,
    session: SessionDep,
    keyring: KeyRingDep,
    now: NowDep,
) -> PossibleMatchPublic:
    """Record the coordinator's decision on a near match (it merges nothing by itself)."""
    row = session.get(PossibleMatch, match_id)
    if row is None:
        raise NotFound("possible match not found")
    case = visible_case(session=session, principal=principal, case_id=row.case_id)
    require_coordinator(principal=principal, case=case)
    row.status = body.decision
    session.add(row)
    audit.append(
        session=session,
        kind="possible_match_decided",
        body={"actor": principal.actor, "case": case.id, "match": row.id, "decision": row.status},
        now=now,
    )
    audit.commit(session=session)
    return PossibleMatchPublic(
        id=row.id,
        candidate=subjects.pseudonym_for(
            keyring,
            domain=subjects.panel_domain(case.panel_id),
            subject_id=row.candidate_subject_id,
        ),
        differing_field=row.differing_field,
        status=row.status,
    )
