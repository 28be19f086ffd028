"""Access requests: an agency asks the coordinator for a grant; the coordinator approves it
(which creates the grant, capped by the panel's profile) or refuses it with a reason."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from hub.errors import BadRequest, Conflict, Forbidden, NotFound
from hub.schemas import (
    AccessRequestCreate,
    AccessRequestDecision,
    AccessRequestPublic,
    AccessRequestsPublic,
)
from hub.services import audit, grants
from hub.services.access import require_coordinator, visible_case
from hub.services.case_audit import case_event
from hub.services.principals import Principal
from hub.storage.models import AccessRequest, Grant
from keys import KeyRing


def associated_data(request_id: str, field: str) -> bytes:
    """What binds an encrypted field of an access request to its row and column."""
    return f"access_request/{request_id}/{field}".encode()


def _public(*, session: Session, keyring: KeyRing, row: AccessRequest) -> AccessRequestPublic:
    grant = session.get(Grant, row.grant_id) if row.grant_id is not None else None
    reason = (
        keyring.decrypt(
            row.reason_ciphertext, associated_data=associated_data(row.id, "reason")
        ).decode()
        if row.reason_ciphertext is not None
        else None
    )
    return AccessRequestPublic(
        id=row.id,
        case_id=row.case_id,
        agency=row.agency_id,
        purpose=row.purposes[0],
        categories=list(row.categories),
        justification=keyring.decrypt(
            row.justification_ciphertext, associated_data=associated_data(row.id, "justification")
        ).decode(),
        state=row.state,
        requested_at=row.requested_at,
        decided_at=row.decided_at,
        decided_by=row.decided_by,
        reason=reason,
        grant=grants.public(grant) if grant is not None else None,
    )


def _audit_details(row: AccessRequest) -> dict[str, Any]:
    """The request's own references; `case_event` adds actor, case and subject."""
    return {
        "access_request": row.id,
        "agency": row.agency_id,
        "purposes": list(row.purposes),
        "categories": list(row.categories),
    }


def create_request(
    *,
    session: Session,
    keyring: KeyRing,
    principal: Principal,
    case_id: str,
    request: AccessRequestCreate,
    now: datetime,
) -> AccessRequestPublic:
    """An agency system of the case's panel asks for access. Raises NotFound or Forbidden."""
    case = visible_case(session=session, principal=principal, case_id=case_id)
    if principal.kind != "agency" or principal.agency_id is None:
        raise Forbidden("access requests are made by agency systems")
    if case.stage in ("signposted", "closed"):
        raise Conflict(f"the case is {case.stage}; no access can be asked for")
    row = AccessRequest(
        case_id=case.id,
        agency_id=principal.agency_id,
        purposes=[request.purpose],
        categories=sorted(set(request.categories)),
        justification_ciphertext="",
        requested_by=principal.actor,
        requested_at=now,
    )
    row.justification_ciphertext = keyring.encrypt(
        request.justification.encode(), associated_data=associated_data(row.id, "justification")
    )
    session.add(row)
    session.flush()
    case_event(
        session=session,
        keyring=keyring,
        actor=principal.actor,
        case=case,
        kind="access_requested",
        now=now,
        details=_audit_details(row),
    )
    audit.commit(session=session)
    return _public(session=session, keyring=keyring, row=row)


def decide_request(
    *,
    session: Session,
    keyring: KeyRing,
    principal: Principal,
    request_id: str,
    decision: AccessRequestDecision,
    now: datetime,
) -> AccessRequestPublic:
    """The coordinator approves (creating the grant) or refuses with a reason.

    Raises NotFound, Forbidden (not the panel's coordinator), Conflict (already decided) or
    BadRequest (an approval without expires_at, a refusal without a reason, a window too long).
    """
    row = session.get(AccessRequest, request_id)
    if row is None:
        raise NotFound("access request not found")
    case = visible_case(session=session, principal=principal, case_id=row.case_id)
    require_coordinator(principal=principal, case=case)
    if row.state != "pending":
        raise Conflict(f"access request is {row.state}, not pending")
    details = _audit_details(row)
    if decision.decision == "approve":
        if decision.expires_at is None:
            raise BadRequest("an approval needs expires_at")
        grant = grants.issue_grant(
            session=session,
            keyring=keyring,
            principal=principal,
            case=case,
            agency_id=row.agency_id,
            purposes=list(row.purposes),
            categories=list(row.categories),
            not_before=decision.not_before,
            expires_at=decision.expires_at,
            legal_basis=decision.legal_basis,
            now=now,
            access_request=row.id,
        )
        row.state = "approved"
        row.grant_id = grant.id
        details["grant"] = grant.id
    else:
        if decision.reason is None:
            raise BadRequest("a refusal needs a reason")
        row.state = "refused"
        row.reason_ciphertext = keyring.encrypt(
            decision.reason.encode(), associated_data=associated_data(row.id, "reason")
        )
    row.decided_by = principal.actor
    row.decided_at = now
    session.add(row)
    details["decision"] = row.state
    case_event(
        session=session,
        keyring=keyring,
        actor=principal.actor,
        case=case,
        kind="access_request_decided",
        now=now,
        details=details,
    )
    audit.commit(session=session)
    return _public(session=session, keyring=keyring, row=row)


def list_requests(
    *, session: Session, keyring: KeyRing, principal: Principal, case_id: str
) -> AccessRequestsPublic:
    """Coordinators and DPOs see every request on the case; an agency only its own."""
    case = visible_case(session=session, principal=principal, case_id=case_id)
    query = select(AccessRequest).where(AccessRequest.case_id == case.id)
    if principal.kind == "agency":
        query = query.where(AccessRequest.agency_id == principal.agency_id)
    rows = session.exec(query.order_by(col(AccessRequest.requested_at).desc())).all()
    data = [_public(session=session, keyring=keyring, row=r) for r in rows]
    return AccessRequestsPublic(data=data, count=len(data))
