"""The coordinator's workflow after intake: the panel's service directory, screening against
the profile's eligibility checklist, the structured assessment, and intervention plans."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Session, col, select

from hub.errors import BadRequest, Conflict, Forbidden, NotFound
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
from hub.services import audit, profiles
from hub.services.access import require_coordinator, visible_case
from hub.services.case_audit import case_event
from hub.services.cases import case_view, move_case, panel_agencies
from hub.services.principals import ADMIN, COORDINATOR, Principal
from hub.storage.models import (
    Case,
    CaseAssessment,
    CaseScreening,
    Consent,
    InterventionPlan,
    Panel,
    PanelService,
)
from keys import KeyRing


def _panel(*, session: Session, principal: Principal, panel_id: str) -> Panel:
    """The panel, if the caller belongs to it; else NotFound."""
    panel = session.get(Panel, panel_id)
    if panel is None or (panel_id not in principal.panels and not principal.has_role(ADMIN)):
        raise NotFound("panel not found")
    return panel


def _profile(*, session: Session, case: Case) -> str:
    panel = session.get(Panel, case.panel_id)
    return panel.profile if panel is not None else ""


def _service_public(row: PanelService) -> ServicePublic:
    return ServicePublic(
        id=row.id, panel=row.panel_id, name=row.name, kind=row.kind, contact=row.contact
    )


def add_service(
    *,
    session: Session,
    principal: Principal,
    panel_id: str,
    service: ServiceCreate,
    now: datetime,
) -> ServicePublic:
    """A coordinator of the panel (or an admin) adds a service to signpost people to."""
    panel = _panel(session=session, principal=principal, panel_id=panel_id)
    if not (
        principal.has_role(ADMIN)
        or (principal.has_role(COORDINATOR) and principal.panel_id == panel.id)
    ):
        raise Forbidden("only a coordinator of the panel or an admin may add services")
    row = PanelService(
        panel_id=panel.id,
        name=service.name,
        kind=service.kind,
        contact=service.contact,
        created_at=now,
    )
    session.add(row)
    session.flush()
    audit.append(
        session=session,
        kind="service_added",
        body={"actor": principal.actor, "panel": panel.id, "service": row.id, "kind": row.kind},
        now=now,
    )
    audit.commit(session=session)
    return _service_public(row)


def list_services(*, session: Session, principal: Principal, panel_id: str) -> ServicesPublic:
    panel = _panel(session=session, principal=principal, panel_id=panel_id)
    rows = session.exec(
        select(PanelService)
        .where(PanelService.panel_id == panel.id)
        .order_by(col(PanelService.name))
    ).all()
    return ServicesPublic(data=[_service_public(r) for r in rows], count=len(rows))


def record_screening(
    *,
    session: Session,
    keyring: KeyRing,
    principal: Principal,
    case_id: str,
    screening: ScreeningCreate,
    now: datetime,
) -> ScreeningPublic:
    """Answer the profile's eligibility checklist and move the case on: `signposted` to a
    service of the panel's directory, or `assessment` (only if every answer is yes).

    Raises NotFound, Forbidden, Conflict (case not in screening) or BadRequest."""
    case = visible_case(session=session, principal=principal, case_id=case_id)
    require_coordinator(principal=principal, case=case)
    if case.stage != "screening":
        raise Conflict(f"the case is in {case.stage}, not screening")
    checklist = profiles.screening_checklist(_profile(session=session, case=case))
    missing = [item for item in checklist if item not in screening.checklist]
    unknown = sorted(set(screening.checklist) - set(checklist))
    if missing or unknown:
        raise BadRequest(
            "checklist must answer exactly the profile's questions",
            details={"field": "checklist", "missing": missing, "unknown": unknown},
        )
    eligible = all(screening.checklist[item] for item in checklist)
    service = None
    if screening.outcome == "signposted":
        if screening.service_id is None:
            raise BadRequest("a signposted case needs service_id", details={"field": "service_id"})
        service = session.get(PanelService, screening.service_id)
        if service is None or service.panel_id != case.panel_id:
            raise BadRequest(
                "service_id is not a service of the panel", details={"field": "service_id"}
            )
    elif not eligible:
        raise BadRequest(
            "a case that does not meet the checklist cannot go to assessment",
            details={"field": "checklist"},
        )
    row = CaseScreening(
        case_id=case.id,
        checklist={item: screening.checklist[item] for item in checklist},
        eligible=eligible,
        outcome=screening.outcome,
        service_id=service.id if service is not None else None,
        recorded_by=principal.actor,
        at=now,
    )
    session.add(row)
    session.flush()
    case_event(
        session=session,
        keyring=keyring,
        actor=principal.actor,
        case=case,
        kind="screening",
        now=now,
        details={
            "screening": row.id,
            "eligible": eligible,
            "outcome": screening.outcome,
            "service": row.service_id,
        },
    )
    move_case(
        session=session,
        keyring=keyring,
        principal=principal,
        case=case,
        to=screening.outcome,
        reason=screening.reason,
        now=now,
        designated_agencies=screening.designated_agencies,
    )
    audit.commit(session=session)
    return ScreeningPublic(
        id=row.id,
        case_id=case.id,
        checklist=dict(row.checklist),
        eligible=eligible,
        outcome=row.outcome,
        service=_service_public(service) if service is not None else None,
        recorded_by=row.recorded_by,
        at=row.at,
        case=case_view(keyring=keyring, principal=principal, case=case),
    )


def record_assessment(
    *,
    session: Session,
    keyring: KeyRing,
    principal: Principal,
    case_id: str,
    assessment: AssessmentCreate,
    now: datetime,
) -> AssessmentPublic:
    """The panel's structured assessment. `closed` ends the case (outcome threshold_not_met);
    `intervention` needs the threshold met and keeps the case in assessment until a plan is
    made. Raises NotFound, Forbidden, Conflict or BadRequest (naming the field)."""
    case = visible_case(session=session, principal=principal, case_id=case_id)
    require_coordinator(principal=principal, case=case)
    if case.stage != "assessment":
        raise Conflict(f"the case is in {case.stage}, not assessment")
    profile = _profile(session=session, case=case)
    dimensions = profiles.threshold_dimensions(profile)
    if set(assessment.dimensions) != set(dimensions):
        raise BadRequest(
            "dimensions must rate exactly the profile's threshold dimensions",
            details={"field": "dimensions", "expected": list(dimensions)},
        )
    _known(assessment.risk_factors, profiles.indicators(profile), field="risk_factors")
    _known(
        assessment.protective_factors,
        profiles.protective_factors(profile),
        field="protective_factors",
    )
    if set(assessment.agencies_present) - panel_agencies(session=session, panel_id=case.panel_id):
        raise BadRequest(
            "agencies_present names agencies not of the panel",
            details={"field": "agencies_present"},
        )
    if assessment.decision == "intervention" and not assessment.threshold_met:
        raise BadRequest(
            "an intervention needs the threshold met", details={"field": "threshold_met"}
        )
    row = CaseAssessment(
        case_id=case.id,
        dimensions={d: assessment.dimensions[d] for d in dimensions},
        risk_factors=sorted(set(assessment.risk_factors)),
        protective_factors=sorted(set(assessment.protective_factors)),
        agencies_present=sorted(set(assessment.agencies_present)),
        threshold_met=assessment.threshold_met,
        decision=assessment.decision,
        recorded_by=principal.actor,
        at=now,
    )
    session.add(row)
    session.flush()
    case_event(
        session=session,
        keyring=keyring,
        actor=principal.actor,
        case=case,
        kind="assessment",
        now=now,
        details={
            "assessment": row.id,
            "threshold_met": row.threshold_met,
            "decision": row.decision,
            "agencies_present": row.agencies_present,
        },
    )
    if assessment.decision == "closed":
        move_case(
            session=session,
            keyring=keyring,
            principal=principal,
            case=case,
            to="closed",
            reason=assessment.reason,
            now=now,
            outcome="threshold_not_met" if not assessment.threshold_met else "no_further_action",
        )
    audit.commit(session=session)
    threshold = profiles.threshold_name(profile)
    return AssessmentPublic(
        id=row.id,
        case_id=case.id,
        threshold=threshold,
        dimensions=dict(row.dimensions),
        risk_factors=list(row.risk_factors),
        protective_factors=list(row.protective_factors),
        agencies_present=list(row.agencies_present),
        threshold_met=row.threshold_met,
        decision=row.decision,
        recorded_by=row.recorded_by,
        at=row.at,
        case=case_view(keyring=keyring, principal=principal, case=case),
    )


def _known(codes: list[str], vocabulary: frozenset[str], *, field: str) -> None:
    unknown = sorted(set(codes) - vocabulary)
    if unknown:
        raise BadRequest(
            f"{field} names codes outside the profile's vocabulary",
            details={"field": field, "unknown": unknown},
        )


def add_intervention(
    *,
    session: Session,
    keyring: KeyRing,
    principal: Principal,
    case_id: str,
    plan: InterventionCreate,
    now: datetime,
) -> InterventionPublic:
    """Make an intervention plan. The first plan moves an assessed case (decision
    `intervention`) into `intervention`, with the lead and assisting agencies designated.

    The intervention-load check counts the person's active plans on the panel's cases; above
    the profile's limit the plan is still made, with a warning. Raises NotFound, Forbidden,
    Conflict or BadRequest."""
    case = visible_case(session=session, principal=principal, case_id=case_id)
    require_coordinator(principal=principal, case=case)
    if case.stage == "assessment":
        latest = session.exec(
            select(CaseAssessment)
            .where(CaseAssessment.case_id == case.id)
            .order_by(col(CaseAssessment.at).desc())
        ).first()
        if latest is None or latest.decision != "intervention":
            raise Conflict("the case has no assessment deciding on an intervention")
    elif case.stage != "intervention":
        raise Conflict(f"the case is in {case.stage}; a plan needs assessment or intervention")
    members = panel_agencies(session=session, panel_id=case.panel_id)
    if plan.lead_agency not in members:
        raise BadRequest(
            "lead_agency is not an agency of the panel", details={"field": "lead_agency"}
        )
    if set(plan.assisting_agencies) - members:
        raise BadRequest(
            "assisting_agencies names agencies not of the panel",
            details={"field": "assisting_agencies"},
        )
    consent = session.get(Consent, plan.consent_id)
    if consent is None or consent.case_id != case.id:
        raise BadRequest(
            "consent_id is not a consent of this case", details={"field": "consent_id"}
        )
    if consent.state != "active" or (
        consent.valid_until is not None and consent.valid_until <= now
    ):
        raise BadRequest(
            f"the consent is {consent.state}; a voluntary intervention needs an active one",
            details={"field": "consent_id"},
        )
    if sorted(plan.review_dates)[0] < now.date():
        raise BadRequest("review_dates must not be in the past", details={"field": "review_dates"})
    profile = _profile(session=session, case=case)
    limit = profiles.max_concurrent_interventions(profile)
    active = len(
        session.exec(
            select(InterventionPlan.id)
            .join(Case, col(Case.id) == col(InterventionPlan.case_id))
            .where(
                InterventionPlan.subject_id == case.subject_id,
                InterventionPlan.state == "active",
                Case.panel_id == case.panel_id,
            )
        ).all()
    )
    warnings: list[str] = []
    if active + 1 > limit:
        warnings.append(
            f"intervention_load: the person would have {active + 1} concurrent interventions;"
            f" the profile allows {limit}"
        )
    assisting = sorted(set(plan.assisting_agencies) - {plan.lead_agency})
    row = InterventionPlan(
        case_id=case.id,
        subject_id=case.subject_id,
        lead_agency=plan.lead_agency,
        assisting_agencies=assisting,
        provider=plan.provider,
        review_dates=[d.isoformat() for d in sorted(set(plan.review_dates))],
        consent_id=consent.id,
        load_warning=bool(warnings),
        recorded_by=principal.actor,
        created_at=now,
    )
    session.add(row)
    session.flush()
    case_event(
        session=session,
        keyring=keyring,
        actor=principal.actor,
        case=case,
        kind="intervention_planned",
        now=now,
        details={
            "plan": row.id,
            "lead_agency": row.lead_agency,
            "assisting_agencies": row.assisting_agencies,
            "consent": consent.id,
            "load_warning": row.load_warning,
        },
    )
    designated = sorted(set(case.designated_agencies) | set(assisting) | {plan.lead_agency})
    if case.stage == "assessment":
        move_case(
            session=session,
            keyring=keyring,
            principal=principal,
            case=case,
            to="intervention",
            reason="intervention plan agreed",
            now=now,
            lead_agency=plan.lead_agency,
            designated_agencies=designated,
        )
    else:
        case.designated_agencies = designated
        case.updated_at = now
        session.add(case)
    audit.commit(session=session)
    return InterventionPublic(
        id=row.id,
        case_id=case.id,
        lead_agency=row.lead_agency,
        assisting_agencies=list(row.assisting_agencies),
        provider=row.provider,
        review_dates=[date.fromisoformat(d) for d in row.review_dates],
        consent_id=row.consent_id,
        state=row.state,
        created_at=row.created_at,
        warnings=warnings,
        case=case_view(keyring=keyring, principal=principal, case=case),
    )
