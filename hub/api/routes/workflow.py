"""The coordinator's workflow: service directory, screening, assessment, interventions."""

from __future__ import annotations

from fastapi import APIRouter, status

from hub.api.deps import CurrentPrincipal, KeyRingDep, NowDep, PathId, SessionDep
from hub.schemas import (
    AssessmentCreate,
    AssessmentPublic,
    InterventionCreate,
    InterventionPublic,
    ScreeningCreate,
    ScreeningPublic,
    ServiceCreate,
    ServicePublic,
    ServicesPublic,
)
from hub.services import workflow

router = APIRouter(tags=["workflow"])


@router.post(
    "/v1/panels/{panel_id}/services",
    response_model=ServicePublic,
    status_code=status.HTTP_201_CREATED,
)
def add_service(
    panel_id: PathId,
    body: ServiceCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    now: NowDep,
) -> ServicePublic:
    """Add a service (name, kind, contact) to the panel's directory for signposting."""
    return workflow.add_service(
        session=session, principal=principal, panel_id=panel_id, service=body, now=now
    )


@router.get("/v1/panels/{panel_id}/services", response_model=ServicesPublic)
def list_services(
    panel_id: PathId, principal: CurrentPrincipal, session: SessionDep
) -> ServicesPublic:
    return workflow.list_services(session=session, principal=principal, panel_id=panel_id)


@router.post(
    "/v1/cases/{case_id}/screening",
    response_model=ScreeningPublic,
    status_code=status.HTTP_201_CREATED,
)
def screen_case(
    case_id: PathId,
    body: ScreeningCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    keyring: KeyRingDep,
    now: NowDep,
) -> ScreeningPublic:
    """Answer the profile's eligibility checklist; signpost to a service or go to assessment."""
    return workflow.record_screening(
        session=session,
        keyring=keyring,
        principal=principal,
        case_id=case_id,
        screening=body,
        now=now,
    )


@router.post(
    "/v1/cases/{case_id}/assessments",
    response_model=AssessmentPublic,
    status_code=status.HTTP_201_CREATED,
)
def assess_case(
    case_id: PathId,
    body: AssessmentCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    keyring: KeyRingDep,
    now: NowDep,
) -> AssessmentPublic:
    """Record the panel's structured assessment and its decision."""
    return workflow.record_assessment(
        session=session,
        keyring=keyring,
        principal=principal,
        case_id=case_id,
        assessment=body,
        now=now,
    )


@router.post(
    "/v1/cases/{case_id}/interventions",
    response_model=InterventionPublic,
    status_code=status.HTTP_201_CREATED,
)
def plan_intervention(
    case_id: PathId,
    body: InterventionCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    keyring: KeyRingDep,
    now: NowDep,
) -> InterventionPublic:
    """Agree an intervention plan; `warnings` flags an intervention load above the profile's."""
    return workflow.add_intervention(
        session=session, keyring=keyring, principal=principal, case_id=case_id, plan=body, now=now
    )
