"""Reading a case as the caller may see it, and moving it through its stages."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from hub.errors import BadRequest, Conflict
from hub.schemas import CasePublic, TransitionCreate
from hub.services import audit, subjects
from hub.services.access import require_coordinator, visible_case
from hub.services.principals import COORDINATOR, Principal
from hub.storage.models import Case, CaseTransition, PanelMembership
from hub.vocabulary import TRANSITIONS
from keys import KeyRing


def _caller_domain(principal: Principal, case: Case) -> str:
    if principal.kind == "agency" and principal.agency_id is not None:
        return subjects.agency_domain(principal.agency_id)
    return subjects.panel_domain(case.panel_id)


def case_view(*, keyring: KeyRing, principal: Principal, case: Case) -> CasePublic:
    """The case as this caller may see it: its own pseudonym; the summary for coordinators."""
    summary = None
    if principal.has_role(COORDINATOR) and case.summary_ciphertext is not None:
        summary = keyring.decrypt(
            case.summary_ciphertext, associated_data=f"case/{case.id}/summary".encode()
        ).decode()
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
        lead_agency=case.lead_agency,
        designated_agencies=list(case.designated_agencies),
        summary=summary,
        created_at=case.created_at,
        updated_at=case.updated_at,
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
    if change.to not in TRANSITIONS[case.stage]:
        raise Conflict(f"a case cannot move from {case.stage} to {change.to}")
    members = panel_agencies(session=session, panel_id=case.panel_id)
    if change.lead_agency is not None:
        if change.lead_agency not in members:
            raise BadRequest("lead_agency is not an agency of the panel")
        case.lead_agency = change.lead_agency
    if change.designated_agencies is not None:
        unknown = set(change.designated_agencies) - members
        if unknown:
            raise BadRequest("designated_agencies names agencies not of the panel")
        case.designated_agencies = sorted(set(change.designated_agencies))
    if change.to == "intervention" and case.lead_agency is None:
        raise BadRequest("an intervention needs a lead_agency")
    session.add(
        CaseTransition(
            case_id=case.id,
            from_stage=case.stage,
            to_stage=change.to,
            actor=principal.actor,
            reason=change.reason,
            at=now,
        )
    )
    audit.append(
        session=session,
        kind="transition",
        body={
            "actor": principal.actor,
            "case": case.id,
            "subject": subjects.audit_ref(keyring, subject_id=case.subject_id),
            "from": case.stage,
            "to": change.to,
            "lead_agency": case.lead_agency,
            "designated_agencies": case.designated_agencies,
        },
        now=now,
    )
    case.stage = change.to
    case.updated_at = now
    session.add(case)
    audit.commit(session=session)
    return case_view(keyring=keyring, principal=principal, case=case)
