"""Recording and withdrawing a case's consents (the simple form; the consent registry issue
deepens it)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from consent import terms
from hub.errors import BadRequest, Conflict, NotFound
from hub.schemas import ConsentCreate, ConsentPublic, ConsentWithdraw
from hub.services import audit, subjects
from hub.services.access import require_coordinator, visible_case
from hub.services.cases import panel_agencies
from hub.services.principals import Principal
from hub.storage.models import Case, Consent
from keys import KeyRing


def _public(row: Consent) -> ConsentPublic:
    return ConsentPublic(
        id=row.id,
        case_id=row.case_id,
        given_by=row.given_by,
        explicit=row.explicit,
        recipients=list(row.recipients),
        purposes=list(row.purposes),
        categories=list(row.categories),
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        state=row.state,
        withdrawn_at=row.withdrawn_at,
    )


def record_consent(
    *,
    session: Session,
    keyring: KeyRing,
    principal: Principal,
    case_id: str,
    consent: ConsentCreate,
    now: datetime,
) -> ConsentPublic:
    """Record what the person agreed to. Raises NotFound, Forbidden or BadRequest."""
    case = visible_case(session=session, principal=principal, case_id=case_id)
    require_coordinator(principal=principal, case=case)
    if set(consent.recipients) - panel_agencies(session=session, panel_id=case.panel_id):
        raise BadRequest("recipients names agencies not of the panel")
    valid_from = consent.valid_from or now
    try:
        terms(
            recipients=consent.recipients,
            purposes=consent.purposes,
            categories=consent.categories,
            valid_from=valid_from,
            valid_until=consent.valid_until,
            state="active",
        )
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    row = Consent(
        case_id=case.id,
        subject_id=case.subject_id,
        given_by=consent.given_by,
        explicit=consent.explicit,
        recipients=sorted(set(consent.recipients)),
        purposes=sorted(set(consent.purposes)),
        categories=sorted(set(consent.categories)),
        valid_from=valid_from,
        valid_until=consent.valid_until,
        evidence_ref=consent.evidence_ref,
        recorded_by=principal.actor,
        created_at=now,
    )
    session.add(row)
    session.flush()
    audit.append(
        session=session,
        kind="consent_recorded",
        body={
            "actor": principal.actor,
            "case": case.id,
            "subject": subjects.audit_ref(keyring, subject_id=case.subject_id),
            "consent": row.id,
            "recipients": row.recipients,
            "purposes": row.purposes,
            "categories": row.categories,
        },
        now=now,
    )
    audit.commit(session=session)
    return _public(row)


def withdraw_consent(
    *,
    session: Session,
    keyring: KeyRing,
    principal: Principal,
    consent_id: str,
    withdrawal: ConsentWithdraw,
    now: datetime,
) -> ConsentPublic:
    """Withdraw with effect from `now`. Raises NotFound, Forbidden or Conflict."""
    row = session.get(Consent, consent_id)
    if row is None:
        raise NotFound("consent not found")
    case = visible_case(session=session, principal=principal, case_id=row.case_id)
    require_coordinator(principal=principal, case=case)
    if row.state != "active":
        raise Conflict(f"consent is {row.state}, not active")
    row.state = "withdrawn"
    row.withdrawn_at = now
    session.add(row)
    audit.append(
        session=session,
        kind="consent_withdrawn",
        body={
            "actor": principal.actor,
            "case": case.id,
            "subject": subjects.audit_ref(keyring, subject_id=case.subject_id),
            "consent": row.id,
        },
        now=now,
    )
    audit.commit(session=session)
    return _public(row)


def active_consents(*, session: Session, case: Case) -> list[Consent]:
    return list(
        session.exec(
            select(Consent).where(Consent.case_id == case.id, Consent.state == "active")
        ).all()
    )
