"""Oversight for data protection officers: every disclosure and denial of their panel, and one
person's disclosure history (found by the audit log's pseudonym for them)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlmodel import Session, col, func, select

from hub.errors import Forbidden, NotFound
from hub.schemas import OversightDecisionPublic, OversightDecisionsPublic
from hub.services import subjects
from hub.services.principals import DPO, Principal
from hub.storage.models import Case, DecisionRecord
from keys import KeyRing

MAX_PAGE = 200


def _panel_of(principal: Principal) -> str:
    if not principal.has_role(DPO) or principal.panel_id is None:
        raise Forbidden("only a data protection officer of a panel may use oversight")
    return principal.panel_id


def _public(row: DecisionRecord, case: Case, keyring: KeyRing) -> OversightDecisionPublic:
    request = row.input.get("request", {})
    return OversightDecisionPublic(
        decision_id=row.decision_id,
        at=row.at,
        decision="allow" if row.allow else "deny",
        agency=row.agency_id,
        case_id=row.case_id,
        subject_ref=subjects.audit_ref(keyring, subject_id=case.subject_id),
        purpose=str(request.get("purpose", "")),
        categories_requested=list(request.get("categories", [])),
        categories_permitted=list(row.output.get("permitted_categories", [])),
        legal_basis=row.output.get("legal_basis"),
        reasons=sorted({str(r.get("code")) for r in row.output.get("reasons", [])}),
        break_glass=bool(request.get("break_glass", False)),
        policy_revision=row.policy_revision,
    )


def list_decisions(
    *,
    session: Session,
    keyring: KeyRing,
    principal: Principal,
    agency: str | None = None,
    purpose: str | None = None,
    case_id: str | None = None,
    decision: Literal["allow", "deny"] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> OversightDecisionsPublic:
    """Disclosures and denials of the DPO's panel, newest first. Raises Forbidden."""
    panel = _panel_of(principal)
    record = DecisionRecord.__table__.c  # type: ignore[attr-defined]
    conditions = [col(Case.panel_id) == panel]
    if agency is not None:
        conditions.append(col(DecisionRecord.agency_id) == agency)
    if purpose is not None:
        # A JSON path into the stored input; SQLAlchemy writes it for SQLite and PostgreSQL.
        conditions.append(record.input[("request", "purpose")].as_string() == purpose)
    if case_id is not None:
        conditions.append(col(DecisionRecord.case_id) == case_id)
    if decision is not None:
        conditions.append(col(DecisionRecord.allow) == (decision == "allow"))
    if since is not None:
        conditions.append(col(DecisionRecord.at) >= since)
    if until is not None:
        conditions.append(col(DecisionRecord.at) < until)
    joined = col(Case.id) == col(DecisionRecord.case_id)
    count = session.exec(
        select(func.count()).select_from(DecisionRecord).join(Case, joined).where(*conditions)
    ).one()
    # Only the page is loaded and turned into public models: a panel has tens of thousands.
    rows = session.exec(
        select(DecisionRecord, Case)
        .join(Case, joined)
        .where(*conditions)
        .order_by(col(DecisionRecord.at).desc(), col(DecisionRecord.decision_id))
        .offset(offset)
        .limit(min(limit, MAX_PAGE))
    ).all()
    items = [_public(row, case, keyring) for row, case in rows]
    return OversightDecisionsPublic(data=items, count=int(count))


def subject_history(
    *, session: Session, keyring: KeyRing, principal: Principal, subject_ref: str
) -> OversightDecisionsPublic:
    """Every disclosure and denial about one person in the DPO's panel (subject access).

    `subject_ref` is the audit log's pseudonym for the person. Raises NotFound for anyone but a
    DPO of the panel, and if no case of the panel is about that person, so the answer never
    says whether someone exists.
    """
    try:
        panel = _panel_of(principal)
    except Forbidden as exc:
        raise NotFound("no case of this panel is about that person") from exc
    case_ids = [
        case.id
        for case in session.exec(select(Case).where(Case.panel_id == panel)).all()
        if subjects.audit_ref(keyring, subject_id=case.subject_id) == subject_ref
    ]
    if not case_ids:
        raise NotFound("no case of this panel is about that person")
    rows = session.exec(
        select(DecisionRecord, Case)
        .join(Case, col(Case.id) == col(DecisionRecord.case_id))
        .where(col(DecisionRecord.case_id).in_(case_ids))
        .order_by(col(DecisionRecord.at).desc(), col(DecisionRecord.decision_id))
    ).all()
    items = [_public(record, case, keyring) for record, case in rows]
    return OversightDecisionsPublic(data=items, count=len(items))


def get_decision(
    *, session: Session, keyring: KeyRing, principal: Principal, decision_id: str
) -> OversightDecisionPublic:
    """One disclosure or denial of the DPO's panel. Raises NotFound for anyone but a DPO of the
    panel, and for a decision of another panel, so the answer never says it exists."""
    try:
        panel = _panel_of(principal)
    except Forbidden as exc:
        raise NotFound("decision not found") from exc
    row = session.exec(
        select(DecisionRecord, Case)
        .join(Case, col(Case.id) == col(DecisionRecord.case_id))
        .where(DecisionRecord.decision_id == decision_id, Case.panel_id == panel)
    ).first()
    if row is None:
        raise NotFound("decision not found")
    record, case = row
    return _public(record, case, keyring)


def subject_ref_of_case(
    *, session: Session, keyring: KeyRing, principal: Principal, case_id: str
) -> str:
    """The audit pseudonym of a case's subject, to find their history by case. Raises NotFound
    for anyone but a DPO of the panel, and for a case of another panel."""
    try:
        panel = _panel_of(principal)
    except Forbidden as exc:
        raise NotFound("no case of this panel has that id") from exc
    case = session.get(Case, case_id)
    if case is None or case.panel_id != panel:
        raise NotFound("no case of this panel has that id")
    return subjects.audit_ref(keyring, subject_id=case.subject_id)
