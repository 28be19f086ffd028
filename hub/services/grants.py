"""A coordinator's time-limited access for one agency on one case."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from hub.errors import BadRequest, Conflict, NotFound
from hub.schemas import GrantCreate, GrantPublic, GrantRevoke
from hub.services import audit, profiles, subjects
from hub.services.access import require_coordinator, visible_case
from hub.services.case_audit import case_event
from hub.services.cases import panel_agencies
from hub.services.principals import Principal
from hub.storage.models import Case, Grant, Panel
from keys import KeyRing

# A grant is for a piece of work, not a standing permission.
MAX_GRANT_DURATION = timedelta(days=90)


def public(row: Grant) -> GrantPublic:
    return GrantPublic(
        id=row.id,
        case_id=row.case_id,
        agency=row.agency_id,
        purposes=list(row.purposes),
        categories=list(row.categories),
        not_before=row.not_before,
        expires_at=row.expires_at,
        legal_basis=row.legal_basis,
        state=row.state,
        revoked_at=row.revoked_at,
    )


def create_grant(
    *,
    session: Session,
    keyring: KeyRing,
    principal: Principal,
    case_id: str,
    grant: GrantCreate,
    now: datetime,
) -> GrantPublic:
    """Grant one agency access. Raises NotFound, Forbidden or BadRequest."""
    case = visible_case(session=session, principal=principal, case_id=case_id)
    require_coordinator(principal=principal, case=case)
    row = issue_grant(
        session=session,
        keyring=keyring,
        principal=principal,
        case=case,
        agency_id=grant.agency,
        purposes=list(grant.purposes),
        categories=list(grant.categories),
        not_before=grant.not_before,
        expires_at=grant.expires_at,
        legal_basis=grant.legal_basis,
        now=now,
    )
    audit.commit(session=session)
    return public(row)


def max_duration(*, session: Session, case: Case) -> timedelta:
    """The longest grant the case's panel profile allows, never above the hub's ceiling."""
    panel = session.get(Panel, case.panel_id)
    days = profiles.max_grant_days(panel.profile) if panel is not None else 0
    return min(timedelta(days=days), MAX_GRANT_DURATION)


def issue_grant(
    *,
    session: Session,
    keyring: KeyRing,
    principal: Principal,
    case: Case,
    agency_id: str,
    purposes: list[str],
    categories: list[str],
    not_before: datetime | None,
    expires_at: datetime,
    legal_basis: str,
    now: datetime,
    access_request: str | None = None,
) -> Grant:
    """Check and add a grant and its audit entry; the caller commits. Raises BadRequest."""
    if agency_id not in panel_agencies(session=session, panel_id=case.panel_id):
        raise BadRequest("agency is not an agency of the panel")
    not_before = not_before or now
    if expires_at.tzinfo is None or not_before.tzinfo is None:
        raise BadRequest("times must carry a time zone")
    if expires_at <= max(now, not_before):
        raise BadRequest("expires_at must be in the future and after not_before")
    longest = max_duration(session=session, case=case)
    if expires_at - not_before > longest:
        raise BadRequest(f"a grant may last at most {longest.days} days under the panel's profile")
    row = Grant(
        case_id=case.id,
        agency_id=agency_id,
        purposes=sorted(set(purposes)),
        categories=sorted(set(categories)),
        not_before=not_before,
        expires_at=expires_at,
        legal_basis=legal_basis,
        granted_by=principal.actor,
        created_at=now,
    )
    session.add(row)
    session.flush()
    body: dict[str, Any] = {
        "actor": principal.actor,
        "case": case.id,
        "subject": subjects.audit_ref(keyring, subject_id=case.subject_id),
        "grant": row.id,
        "agency": row.agency_id,
        "purposes": row.purposes,
        "categories": row.categories,
        "not_before": row.not_before.isoformat(),
        "expires_at": row.expires_at.isoformat(),
    }
    if access_request is not None:
        body["access_request"] = access_request
    audit.append(session=session, kind="grant_created", body=body, now=now)
    return row


def revoke_grant(
    *,
    session: Session,
    keyring: KeyRing,
    principal: Principal,
    grant_id: str,
    revocation: GrantRevoke,
    now: datetime,
) -> GrantPublic:
    """Revoke with effect from `now`. Raises NotFound, Forbidden or Conflict."""
    row = session.get(Grant, grant_id)
    if row is None:
        raise NotFound("grant not found")
    case = visible_case(session=session, principal=principal, case_id=row.case_id)
    require_coordinator(principal=principal, case=case)
    if row.state != "active":
        raise Conflict(f"grant is {row.state}, not active")
    row.state = "revoked"
    row.revoked_at = now
    session.add(row)
    case_event(
        session=session,
        keyring=keyring,
        actor=principal.actor,
        case=case,
        kind="grant_revoked",
        now=now,
        details={
            "grant": row.id,
        },
    )
    audit.commit(session=session)
    return public(row)
