"""Re-identification: learning who a case's subject is, as an act of its own.

Allowed at once to a coordinator of the case's panel while the case is open. Anyone else
(a coordinator of a closed case, a DPO) files a request that needs a coordinator and a DPO,
two different people, to approve; the requester's own role counts as one approval. Every
step is audited with a reason code and never with the identity or the free-text reason (the
reason is kept sealed under the subject's data key).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session

from hub.errors import BadRequest, Conflict, Forbidden, NotFound
from hub.services import audit, subject_keys, subjects
from hub.services.access import visible_case
from hub.services.case_audit import case_event
from hub.services.principals import COORDINATOR, DPO, Principal
from hub.services.referrals import OPEN_STAGES
from hub.storage.models import Case, ReidentificationRequest, Subject
from keys import KeyRing

REASON_CODES = (
    "safeguarding_action",
    "court_order",
    "subject_access_request",
    "data_quality",
    "legal_obligation",
)


@dataclass(frozen=True)
class Outcome:
    """Either the identity (granted) or a pending request to be approved."""

    status: str  # "granted" or "pending"
    request_id: str | None
    given_name: str | None = None
    family_name: str | None = None
    date_of_birth: date | None = None


def _role_of(principal: Principal) -> str:
    if principal.kind != "user":
        raise Forbidden("only a coordinator or a DPO may re-identify a subject")
    if principal.has_role(COORDINATOR):
        return COORDINATOR
    if principal.has_role(DPO):
        return DPO
    raise Forbidden("only a coordinator or a DPO may re-identify a subject")


def _granted(
    *,
    session: Session,
    keyring: KeyRing,
    principal: Principal,
    case: Case,
    reason_code: str,
    basis: str,
    request_id: str | None,
    now: datetime,
) -> Outcome:
    subject = session.get(Subject, case.subject_id)
    if subject is None:
        raise NotFound("case not found")
    identity = subjects.identity_of(keyring, subject)
    case_event(
        session=session,
        keyring=keyring,
        actor=principal.actor,
        case=case,
        kind="reidentified",
        now=now,
        details={
            "reason_code": reason_code,
            "basis": basis,
            "request": request_id,
        },
    )
    audit.commit(session=session)
    return Outcome(
        status="granted",
        request_id=request_id,
        given_name=identity.given_name,
        family_name=identity.family_name,
        date_of_birth=identity.date_of_birth,
    )


def reidentify(
    *,
    session: Session,
    keyring: KeyRing,
    principal: Principal,
    case_id: str,
    reason_code: str,
    reason: str,
    request_id: str | None,
    now: datetime,
) -> Outcome:
    """Give the identity of the case's subject, or file a request for two approvers.

    With `request_id`, use an approved request of this caller for this case. Raises NotFound
    for a case (or request) the caller cannot see, Forbidden for a caller who is not a
    coordinator or DPO, BadRequest for an unknown reason code, Conflict for a request not yet
    approved or already used, SubjectErased if the subject was crypto-shredded.
    """
    if reason_code not in REASON_CODES:
        raise BadRequest(f"reason_code must be one of {', '.join(REASON_CODES)}")
    # Visibility first: a caller of another panel learns nothing, not even which roles may ask.
    case = visible_case(session=session, principal=principal, case_id=case_id)
    role = _role_of(principal)
    if request_id is not None:
        request = session.get(ReidentificationRequest, request_id)
        if request is None or request.case_id != case.id or request.requested_by != principal.actor:
            raise NotFound("re-identification request not found")
        if request.status != "approved":
            raise Conflict(
                f"re-identification request is {request.status}: it needs a coordinator's and "
                "a DPO's approval, and is used once"
            )
        request.status, request.decided_at = "used", now
        session.add(request)
        return _granted(
            session=session,
            keyring=keyring,
            principal=principal,
            case=case,
            reason_code=request.reason_code,
            basis="two_person_approval",
            request_id=request.id,
            now=now,
        )
    if role == COORDINATOR and principal.panel_id == case.panel_id and case.stage in OPEN_STAGES:
        return _granted(
            session=session,
            keyring=keyring,
            principal=principal,
            case=case,
            reason_code=reason_code,
            basis="coordinator_of_open_case",
            request_id=None,
            now=now,
        )
    request = ReidentificationRequest(
        case_id=case.id,
        requested_by=principal.actor,
        reason_code=reason_code,
        reason_ciphertext="",
        approvals=[{"actor": principal.actor, "role": role}],
        status="pending",
        created_at=now,
    )
    request.reason_ciphertext = subject_keys.seal(
        session=session,
        keyring=keyring,
        subject_id=case.subject_id,
        table="reidentification_request",
        row=request.id,
        column="reason_ciphertext",
        plaintext=reason.encode(),
    )
    session.add(request)
    audit.append(
        session=session,
        kind="reidentification_requested",
        body={
            "actor": principal.actor,
            "case": case.id,
            "request": request.id,
            "reason_code": reason_code,
            "role": role,
        },
        now=now,
    )
    audit.commit(session=session)
    return Outcome(status="pending", request_id=request.id)


def approve(
    *, session: Session, principal: Principal, request_id: str, now: datetime
) -> ReidentificationRequest:
    """Add the caller's approval; approved once a coordinator and a DPO (two people) agree.

    Raises NotFound for a request on a case the caller cannot see, Forbidden for a caller who
    is not a coordinator or DPO, Conflict if the caller already approved or it is decided.
    """
    request = session.get(ReidentificationRequest, request_id)
    if request is None:
        raise NotFound("re-identification request not found")
    visible_case(session=session, principal=principal, case_id=request.case_id)
    role = _role_of(principal)
    if request.status != "pending":
        raise Conflict(f"re-identification request is already {request.status}")
    if any(a["actor"] == principal.actor for a in request.approvals):
        raise Conflict("the second approval must come from another person")
    request.approvals = [*request.approvals, {"actor": principal.actor, "role": role}]
    roles = {a["role"] for a in request.approvals}
    if {COORDINATOR, DPO} <= roles:
        request.status, request.decided_at = "approved", now
    session.add(request)
    audit.append(
        session=session,
        kind="reidentification_approved",
        body={
            "actor": principal.actor,
            "case": request.case_id,
            "request": request.id,
            "reason_code": request.reason_code,
            "role": role,
            "status": request.status,
        },
        now=now,
    )
    audit.commit(session=session)
    return request
