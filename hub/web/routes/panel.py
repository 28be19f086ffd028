"""Pages for a panel's coordinator under /panel: the cases by stage, one case, and the forms
that move a case, record consent, grant and revoke access, and answer access requests.

Every form calls the same service as its JSON API route. A service's refusal is shown on the
case page with the status the API would give; a form that does not validate, with 422.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from hub.api.deps import KeyRingDep, NowDep, SessionDep
from hub.errors import HubError
from hub.schemas import (
    AccessRequestDecision,
    ConsentCreate,
    GrantCreate,
    GrantRevoke,
    TransitionCreate,
)
from hub.services import access_requests, cases, consents, grants, panel_board
from hub.vocabulary import CATEGORIES, PURPOSES, ConsentGiver, GrantLegalBasis, Outcome
from hub.web.auth import CoordinatorPerson, CsrfChecked, WebPerson
from hub.web.pages import status_for
from hub.web.templating import render

router = APIRouter(prefix="/panel", include_in_schema=False)

DONE = {
    "stage_moved": "The case moved to its new stage.",
    "consent_recorded": "The consent was recorded.",
    "grant_created": "Access was granted.",
    "grant_revoked": "The grant was revoked; it no longer lets the agency in.",
    "request_approved": "The access request was approved and its grant created.",
    "request_refused": "The access request was refused.",
}
# How long a grant made from the forms lasts unless the coordinator says otherwise.
DEFAULT_GRANT_DAYS = 7

Text = Annotated[str, Form(max_length=1000)]
Choices = Annotated[list[str], Form()]


def _utc(value: str) -> datetime | None:
    """A `datetime-local` field's value, read as UTC (the forms say so); empty means none."""
    if not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValueError("not a date and time") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _local(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def _problems(exc: ValidationError) -> list[str]:
    # Field and rule only, never the value typed.
    return [f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in exc.errors()]


def _case_page(
    request: Request,
    *,
    person: WebPerson,
    session: SessionDep,
    keyring: KeyRingDep,
    now: datetime,
    case_id: str,
    error: str | None = None,
    problems: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    principal = person.principal
    case = cases.get_case(session=session, keyring=keyring, principal=principal, case_id=case_id)
    requests = access_requests.list_requests(
        session=session, keyring=keyring, principal=principal, case_id=case_id
    ).data
    context: dict[str, Any] = {
        "case": case,
        "history": panel_board.stage_history(session=session, principal=principal, case_id=case_id),
        "consents": consents.list_consents(
            session=session, keyring=keyring, principal=principal, case_id=case_id, now=now
        ).data,
        "grants": panel_board.case_grants(
            session=session, principal=principal, case_id=case_id, now=now
        ),
        "open_requests": [r for r in requests if r.state == "pending"],
        "decided_requests": [r for r in requests if r.state != "pending"],
        "next_stages": panel_board.next_stages(case.stage),
        "agencies": panel_board.panel_agencies(session=session, principal=principal),
        "purposes": PURPOSES,
        "categories": CATEGORIES,
        "givers": get_args(ConsentGiver),
        "legal_bases": get_args(GrantLegalBasis),
        "outcomes": get_args(Outcome),
        "default_expiry": _local(now + timedelta(days=DEFAULT_GRANT_DAYS)),
        "done": DONE.get(request.query_params.get("done", "")),
        "error": error,
        "problems": problems or [],
    }
    return render(request, "panel/case.html", context, status_code=status_code)


def _refused(
    request: Request,
    exc: HubError | ValidationError | ValueError,
    *,
    person: WebPerson,
    session: SessionDep,
    keyring: KeyRingDep,
    now: datetime,
    case_id: str,
) -> Response:
    """The case page again, with why the form was not accepted."""
    session.rollback()
    if isinstance(exc, HubError):
        error, problems, status = exc.message, [], status_for(exc)
    elif isinstance(exc, ValidationError):
        error, problems, status = "Some fields are missing or not valid.", _problems(exc), 422
    else:
        error, problems, status = f"A field is not valid: {exc}", [], 422
    return _case_page(
        request,
        person=person,
        session=session,
        keyring=keyring,
        now=now,
        case_id=case_id,
        error=error,
        problems=problems,
        status_code=status,
    )


def _done(case_id: str, what: str) -> Response:
    # Post/redirect/get: reloading the page never sends the form twice.
    return RedirectResponse(f"/panel/cases/{case_id}?done={what}#result", status_code=303)


@router.get("/")
def panel_home(
    request: Request, person: CoordinatorPerson, session: SessionDep, keyring: KeyRingDep
) -> Response:
    board = panel_board.board(session=session, keyring=keyring, principal=person.principal)
    return render(request, "panel/cases.html", {"board": board})


@router.get("/cases/{case_id}")
def case_page(
    case_id: str,
    request: Request,
    person: CoordinatorPerson,
    session: SessionDep,
    keyring: KeyRingDep,
    now: NowDep,
) -> Response:
    return _case_page(
        request, person=person, session=session, keyring=keyring, now=now, case_id=case_id
    )


@router.post("/cases/{case_id}/stage")
def move_stage(
    case_id: str,
    request: Request,
    person: CoordinatorPerson,
    _csrf: CsrfChecked,
    session: SessionDep,
    keyring: KeyRingDep,
    now: NowDep,
    to: Text = "",
    reason: Text = "",
    lead_agency: Text = "",
    designated_agencies: Choices = [],  # noqa: B006  (FastAPI copies defaults per request)
    outcome: Text = "",
) -> Response:
    try:
        change = TransitionCreate.model_validate(
            {
                "to": to,
                "reason": reason,
                "lead_agency": lead_agency or None,
                "designated_agencies": designated_agencies or None,
                "outcome": outcome or None,
            }
        )
        cases.transition(
            session=session,
            keyring=keyring,
            principal=person.principal,
            case_id=case_id,
            change=change,
            now=now,
        )
    except (HubError, ValidationError) as exc:
        return _refused(
            request, exc, person=person, session=session, keyring=keyring, now=now, case_id=case_id
        )
    return _done(case_id, "stage_moved")


@router.post("/cases/{case_id}/consents")
def record_consent(
    case_id: str,
    request: Request,
    person: CoordinatorPerson,
    _csrf: CsrfChecked,
    session: SessionDep,
    keyring: KeyRingDep,
    now: NowDep,
    decision: Text = "given",
    given_by: Text = "",
    relationship: Text = "",
    explicit: Text = "",
    recipients: Choices = [],  # noqa: B006
    purposes: Choices = [],  # noqa: B006
    categories: Choices = [],  # noqa: B006
    method: Text = "written",
    evidence_ref: Text = "",
    valid_until: Text = "",
) -> Response:
    try:
        consent = ConsentCreate.model_validate(
            {
                "decision": decision,
                "given_by": given_by,
                "relationship": relationship or None,
                "explicit": explicit == "yes",
                "recipients": recipients,
                "purposes": purposes,
                "categories": categories,
                "method": method,
                "evidence_ref": evidence_ref or None,
                "valid_until": _utc(valid_until),
            }
        )
        consents.record_consent(
            session=session,
            keyring=keyring,
            principal=person.principal,
            case_id=case_id,
            consent=consent,
            now=now,
        )
    except (HubError, ValidationError, ValueError) as exc:
        return _refused(
            request, exc, person=person, session=session, keyring=keyring, now=now, case_id=case_id
        )
    return _done(case_id, "consent_recorded")


@router.post("/cases/{case_id}/grants")
def create_grant(
    case_id: str,
    request: Request,
    person: CoordinatorPerson,
    _csrf: CsrfChecked,
    session: SessionDep,
    keyring: KeyRingDep,
    now: NowDep,
    agency: Text = "",
    purposes: Choices = [],  # noqa: B006
    categories: Choices = [],  # noqa: B006
    not_before: Text = "",
    expires_at: Text = "",
    legal_basis: Text = "public_task",
) -> Response:
    try:
        grant = GrantCreate.model_validate(
            {
                "agency": agency,
                "purposes": purposes,
                "categories": categories,
                "not_before": _utc(not_before),
                "expires_at": _utc(expires_at),
                "legal_basis": legal_basis,
            }
        )
        grants.create_grant(
            session=session,
            keyring=keyring,
            principal=person.principal,
            case_id=case_id,
            grant=grant,
            now=now,
        )
    except (HubError, ValidationError, ValueError) as exc:
        return _refused(
            request, exc, person=person, session=session, keyring=keyring, now=now, case_id=case_id
        )
    return _done(case_id, "grant_created")


@router.post("/cases/{case_id}/grants/{grant_id}/revoke")
def revoke_grant(
    case_id: str,
    grant_id: str,
    request: Request,
    person: CoordinatorPerson,
    _csrf: CsrfChecked,
    session: SessionDep,
    keyring: KeyRingDep,
    now: NowDep,
    reason: Text = "",
) -> Response:
    try:
        revoked = grants.revoke_grant(
            session=session,
            keyring=keyring,
            principal=person.principal,
            grant_id=grant_id,
            revocation=GrantRevoke.model_validate({"reason": reason}),
            now=now,
        )
    except (HubError, ValidationError) as exc:
        return _refused(
            request, exc, person=person, session=session, keyring=keyring, now=now, case_id=case_id
        )
    return _done(revoked.case_id, "grant_revoked")


@router.post("/cases/{case_id}/access-requests/{request_id}/decision")
def decide_access_request(
    case_id: str,
    request_id: str,
    request: Request,
    person: CoordinatorPerson,
    _csrf: CsrfChecked,
    session: SessionDep,
    keyring: KeyRingDep,
    now: NowDep,
    decision: Text = "",
    not_before: Text = "",
    expires_at: Text = "",
    legal_basis: Text = "public_task",
    reason: Text = "",
) -> Response:
    try:
        answer = AccessRequestDecision.model_validate(
            {
                "decision": decision,
                "not_before": _utc(not_before) if decision == "approve" else None,
                "expires_at": _utc(expires_at) if decision == "approve" else None,
                "legal_basis": legal_basis,
                "reason": (reason or None) if decision == "refuse" else None,
            }
        )
        decided = access_requests.decide_request(
            session=session,
            keyring=keyring,
            principal=person.principal,
            request_id=request_id,
            decision=answer,
            now=now,
        )
    except (HubError, ValidationError, ValueError) as exc:
        return _refused(
            request, exc, person=person, session=session, keyring=keyring, now=now, case_id=case_id
        )
    return _done(decided.case_id, f"request_{decided.state}")
