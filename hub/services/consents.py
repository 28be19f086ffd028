"""The consent registry: records a person can trust, withdrawal that works at once, refusals
kept, superseding by scope, expiry by time, and signed receipts.

Every change adds a `consent_change` row and an audit entry; nothing is edited away or deleted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_
from sqlmodel import Session, col, select

from consent import ConsentGiverError, check_giver
from hub.errors import BadRequest, Conflict, Forbidden, NotFound
from hub.schemas import (
    ConsentChangePublic,
    ConsentCreate,
    ConsentPublic,
    ConsentsPublic,
    ConsentWithdraw,
)
from hub.services import audit, notifications, profiles, subjects
from hub.services.access import visible_case
from hub.services.case_audit import case_event
from hub.services.cases import panel_agencies
from hub.services.principals import COORDINATOR, Principal
from hub.storage.models import Case, Consent, ConsentChange, Panel, Subject
from keys import KeyRing


def _history(session: Session, consent_id: str) -> list[ConsentChangePublic]:
    rows = session.exec(
        select(ConsentChange)
        .where(ConsentChange.consent_id == consent_id)
        .order_by(col(ConsentChange.version))
    ).all()
    return [ConsentChangePublic(at=r.at, actor=r.actor, state=r.state) for r in rows]


def public(session: Session, row: Consent) -> ConsentPublic:
    return ConsentPublic(
        id=row.id,
        version=row.version,
        case_id=row.case_id,
        given_by=row.given_by,
        relationship=row.relationship,
        explicit=row.explicit,
        recipients=list(row.recipients),
        purposes=list(row.purposes),
        categories=list(row.categories),
        method=row.method,
        evidence_ref=row.evidence_ref,
        notice_version=row.notice_version,
        given_at=row.given_at,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        state=row.state,
        withdrawn_at=row.withdrawn_at,
        history=_history(session, row.id),
    )


def _may_manage(principal: Principal, case: Case) -> None:
    """The panel's coordinator, or an agency system of the panel (the one that obtained it)."""
    if principal.has_role(COORDINATOR) and principal.panel_id == case.panel_id:
        return
    if principal.kind == "agency" and case.panel_id in principal.panels:
        return
    raise Forbidden("only the panel's coordinator or a member agency may record consent")


def _change(
    *,
    session: Session,
    keyring: KeyRing,
    row: Consent,
    state: str,
    actor: str,
    reason: str | None,
    now: datetime,
) -> None:
    """Move the record to `state`, keep the history line and log it (without the reason)."""
    if row.state != state:
        row.version += 1
    row.state = state
    change = ConsentChange(consent_id=row.id, version=row.version, at=now, actor=actor, state=state)
    if reason:
        change.reason_ciphertext = keyring.encrypt(
            reason.encode(), associated_data=f"consent_change/{change.id}/reason".encode()
        )
    session.add(change)
    session.add(row)
    case = session.get(Case, row.case_id)
    if case is None:  # The foreign key rules this out; never log against a missing case.
        raise NotFound("case not found")
    case_event(
        session=session,
        keyring=keyring,
        actor=actor,
        case=case,
        kind=f"consent_{state}" if state != "active" else "consent_given",
        now=now,
        details={
            "consent": row.id,
            "version": row.version,
            "recipients": row.recipients,
            "purposes": row.purposes,
            "categories": row.categories,
        },
    )


def _check_minor(
    session: Session, keyring: KeyRing, case: Case, given_by: str, now: datetime
) -> None:
    panel = session.get(Panel, case.panel_id)
    subject = session.get(Subject, case.subject_id)
    if panel is None or subject is None:
        raise NotFound("case not found")
    age = subjects.identity_of(keyring, subject).age_on(now.date())
    try:
        check_giver(
            given_by=given_by,
            subject_age=age,
            age_of_consent=profiles.age_of_consent(panel.profile),
        )
    except ConsentGiverError as exc:
        raise BadRequest(str(exc), details={"field": "given_by"}) from exc


def record_consent(
    *,
    session: Session,
    keyring: KeyRing,
    principal: Principal,
    case_id: str,
    consent: ConsentCreate,
    now: datetime,
) -> ConsentPublic:
    """Record a consent given (superseding active ones of the same scope) or refused.

    Raises NotFound, Forbidden, or BadRequest (recipients not of the panel, a window that ends
    before it starts, or a minor's own consent where the profile wants a parent's).
    """
    case = visible_case(session=session, principal=principal, case_id=case_id)
    _may_manage(principal, case)
    if set(consent.recipients) - panel_agencies(session=session, panel_id=case.panel_id):
        raise BadRequest("recipients names agencies not of the panel")
    valid_from = consent.valid_from or now
    if consent.valid_until is not None and consent.valid_until <= valid_from:
        raise BadRequest("consent must end after it starts")
    if consent.decision == "given":
        _check_minor(session, keyring, case, consent.given_by, now)
    row = Consent(
        case_id=case.id,
        subject_id=case.subject_id,
        given_by=consent.given_by,
        relationship=consent.relationship,
        explicit=consent.explicit,
        recipients=sorted(set(consent.recipients)),
        purposes=sorted(set(consent.purposes)),
        categories=sorted(set(consent.categories)),
        method=consent.method,
        evidence_ref=consent.evidence_ref,
        notice_version=consent.notice_version,
        given_at=consent.given_at or now,
        valid_from=valid_from,
        valid_until=consent.valid_until,
        state="refused" if consent.decision == "refused" else "active",
        recorded_by=principal.actor,
        created_at=now,
    )
    session.add(row)
    session.flush()
    if consent.decision == "given":
        # The person's newest statement for the same recipients and purposes replaces the old.
        for older in active_consents(session=session, case=case):
            if older.id != row.id and _same_scope(older, row):
                _change(
                    session=session,
                    keyring=keyring,
                    row=older,
                    state="superseded",
                    actor=principal.actor,
                    reason=f"superseded by {row.id}",
                    now=now,
                )
    _change(
        session=session,
        keyring=keyring,
        row=row,
        state=row.state,
        actor=principal.actor,
        reason=None,
        now=now,
    )
    audit.commit(session=session)
    return public(session, row)


def _same_scope(a: Consent, b: Consent) -> bool:
    return (
        a.case_id == b.case_id
        and set(a.recipients) == set(b.recipients)
        and set(a.purposes) == set(b.purposes)
    )


def list_consents(
    *, session: Session, keyring: KeyRing, principal: Principal, case_id: str, now: datetime
) -> ConsentsPublic:
    """Every consent of the case, newest first, with its history (expiring any that are due)."""
    case = visible_case(session=session, principal=principal, case_id=case_id)
    _may_manage(principal, case)
    if expire_due(session=session, keyring=keyring, now=now, case_id=case.id):
        audit.commit(session=session)
    rows = session.exec(
        select(Consent)
        .where(Consent.case_id == case.id)
        .order_by(col(Consent.created_at).desc(), col(Consent.id))
    ).all()
    return ConsentsPublic(data=[public(session, r) for r in rows], count=len(rows))


def _managed_consent(
    session: Session, principal: Principal, consent_id: str
) -> tuple[Consent, Case]:
    row = session.get(Consent, consent_id)
    if row is None:
        raise NotFound("consent not found")
    case = visible_case(session=session, principal=principal, case_id=row.case_id)
    coordinator = principal.has_role(COORDINATOR) and principal.panel_id == case.panel_id
    if not coordinator and row.recorded_by != principal.actor:
        raise Forbidden("only the coordinator or the agency that obtained it may do this")
    return row, case


def withdraw_consent(
    *,
    session: Session,
    keyring: KeyRing,
    principal: Principal,
    consent_id: str,
    withdrawal: ConsentWithdraw,
    now: datetime,
) -> ConsentPublic:
    """Withdraw with effect from `now`: a decision one instant later is denied.

    Raises NotFound, Forbidden or Conflict (not active).
    """
    row, _case = _managed_consent(session, principal, consent_id)
    if row.state != "active":
        raise Conflict(f"consent is {row.state}, not active")
    row.withdrawn_at = now
    _change(
        session=session,
        keyring=keyring,
        row=row,
        state="withdrawn",
        actor=principal.actor,
        reason=withdrawal.reason,
        now=now,
    )
    # In the same transaction: the withdrawal is never durable without its notifications.
    notifications.enqueue_for_consent(
        session=session, keyring=keyring, consent=row, event="consent.withdrawn", now=now
    )
    audit.commit(session=session)
    return public(session, row)


def expire_due(
    *, session: Session, keyring: KeyRing, now: datetime, case_id: str | None = None
) -> list[Consent]:
    """Mark active consents whose validity has ended as expired (the caller commits)."""
    query = select(Consent).where(
        Consent.state == "active",
        col(Consent.valid_until).is_not(None),
        col(Consent.valid_until) <= now,
    )
    if case_id is not None:
        query = query.where(Consent.case_id == case_id)
    expired = list(session.exec(query).all())
    for row in expired:
        _change(
            session=session,
            keyring=keyring,
            row=row,
            state="expired",
            actor="hub",
            reason="validity ended",
            now=now,
        )
        notifications.enqueue_for_consent(
            session=session, keyring=keyring, consent=row, event="consent.expired", now=now
        )
    return expired


def active_on_case(case_id: Any) -> ColumnElement[bool]:
    """The consents in force on a case (`case_id` a value or a bound parameter): the one
    definition every reader of active consents uses."""
    return and_(col(Consent.case_id) == case_id, col(Consent.state) == "active")


def active_consents(*, session: Session, case: Case) -> list[Consent]:
    return list(session.exec(select(Consent).where(active_on_case(case.id))).all())


def managed_consent(session: Session, principal: Principal, consent_id: str) -> Consent:
    """The consent if the caller may manage it; raises NotFound or Forbidden."""
    return _managed_consent(session, principal, consent_id)[0]
