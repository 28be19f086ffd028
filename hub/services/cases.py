"""Reading a case as the caller may see it, and moving it through its stages."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import object_session
from sqlmodel import Session, select

from hub.errors import BadRequest, Conflict, SubjectErased
from hub.schemas import CasePublic, TransitionCreate
from hub.services import audit, profiles, subjects
from hub.services.access import require_coordinator, visible_case
from hub.services.case_audit import case_event
from hub.services.principals import COORDINATOR, Principal
from hub.storage.models import Case, CaseTransition, InterventionPlan, Panel, PanelMembership
from hub.vocabulary import TRANSITIONS
from keys import KeyRing


def _caller_domain(principal: Principal, case: Case) -> str:
    if principal.kind == "agency" and principal.agency_id is not None:
        return subjects.agency_domain(principal.agency_id)
    return subjects.panel_domain(case.panel_id)


def case_view(*, keyring: KeyRing, principal: Principal, case: Case) -> CasePublic:
    """The case as this caller may see it: its own pseudonym; the summary for coordinators."""
    summary = None
    session = object_session(case)
    if (
        principal.has_role(COORDINATOR)
        and case.summary_ciphertext is not None
        and isinstance(session, Session)
    ):
        try:
            summary = subjects.case_summary(session=session, keyring=keyring, case=case)
        except SubjectErased:
            # The subject was crypto-shredded: the case's record stays, its free text is gone.
            summary = None
    return CasePublic(
        id=case.id,
        panel=case.panel_id,
        stage=case.stage,
        subject=subjects.pseudonym_for(
            keyring, domain=_caller_domain(principal, case), subject_id=case.subject_id
        ),
        referred_by=case.referred_by,
        channel=case.channel,
        indicators=list(case.indicators),
        protective_factors=list(case.protective_factors),
        lead_agency=case.lead_agency,
        designated_agencies=list(case.designated_agencies),
        summary=summary,
        created_at=case.created_at,
        updated_at=case.updated_at,
        outcome=case.outcome,
        closed_at=case.closed_at,
        retain_until=case.retain_until,
    )


def get_case(
    *, session: Session, keyring: KeyRing, principal: Principal, case_id: str
) -> CasePublic:
    """Raises NotFound if the case is absent or not visible to the caller."""
    case = visible_case(session=session, principal=principal, case_id=case_id)
    return case_view(keyring=keyring, principal=principal, case=case)


def panel_agencies(*, session: Session, panel_id: str) -> set[str]:
    return set(
        session.exec(
            select(PanelMembership.agency_id).where(PanelMembership.panel_id == panel_id)
        ).all()
    )


def transition(
    *,
    session: Session,
    keyring: KeyRing,
    principal: Principal,
    case_id: str,
    change: TransitionCreate,
    now: datetime,
) -> CasePublic:
    """Move a case to its next stage.

    Raises NotFound, Forbidden (not the panel's coordinator), Conflict (transition not allowed
    from the current stage) or BadRequest (lead or designated agencies not of the panel).
    """
    case = visible_case(session=session, principal=principal, case_id=case_id)
    require_coordinator(principal=principal, case=case)
    move_case(
        session=session,
        keyring=keyring,
        principal=principal,
        case=case,
        to=change.to,
        reason=change.reason,
        now=now,
        lead_agency=change.lead_agency,
        designated_agencies=change.designated_agencies,
        outcome=change.outcome,
    )
    audit.commit(session=session)
    return case_view(keyring=keyring, principal=principal, case=case)


END_STAGES = ("signposted", "closed")


def move_case(
    *,
    session: Session,
    keyring: KeyRing,
    principal: Principal,
    case: Case,
    to: str,
    reason: str,
    now: datetime,
    lead_agency: str | None = None,
    designated_agencies: list[str] | None = None,
    outcome: str | None = None,
) -> None:
    """Check and make one transition with its audit entry; the caller commits.

    Reaching an end (`signposted`, `closed`) records the outcome, ends the case's active
    intervention plans and sets the retention date from the panel's profile.
    """
    if to not in TRANSITIONS[case.stage]:
        raise Conflict(f"a case cannot move from {case.stage} to {to}")
    if to == "signposted":
        if outcome not in (None, "signposted"):
            raise BadRequest("a signposted case has the outcome signposted")
        outcome = "signposted"
    elif to == "closed":
        if outcome == "signposted":
            raise BadRequest("outcome signposted is reached through screening, not closing")
        outcome = outcome or "no_further_action"
    elif outcome is not None:
        raise BadRequest("an outcome is given only when closing")
    members = panel_agencies(session=session, panel_id=case.panel_id)
    if lead_agency is not None:
        if lead_agency not in members:
            raise BadRequest("lead_agency is not an agency of the panel")
        case.lead_agency = lead_agency
    if designated_agencies is not None:
        unknown = set(designated_agencies) - members
        if unknown:
            raise BadRequest("designated_agencies names agencies not of the panel")
        case.designated_agencies = sorted(set(designated_agencies))
    if to == "intervention" and case.lead_agency is None:
        raise BadRequest("an intervention needs a lead_agency")
    session.add(
        CaseTransition(
            case_id=case.id,
            from_stage=case.stage,
            to_stage=to,
            actor=principal.actor,
            reason=reason,
            at=now,
        )
    )
    details: dict[str, Any] = {
        "from": case.stage,
        "to": to,
        "lead_agency": case.lead_agency,
        "designated_agencies": case.designated_agencies,
    }
    if to in END_STAGES:
        panel = session.get(Panel, case.panel_id)
        days = profiles.retention_days(panel.profile if panel is not None else "")
        case.outcome = outcome
        case.closed_at = now
        case.retain_until = now + timedelta(days=days)
        for plan in session.exec(
            select(InterventionPlan).where(
                InterventionPlan.case_id == case.id, InterventionPlan.state == "active"
            )
        ).all():
            plan.state = "ended"
            plan.ended_at = now
            session.add(plan)
        details["outcome"] = outcome
        details["retain_until"] = case.retain_until.isoformat()
    case_event(
        session=session,
        keyring=keyring,
        actor=principal.actor,
        case=case,
        kind="transition",
        now=now,
        details=details,
    )
    case.stage = to
    case.updated_at = now
    session.add(case)
