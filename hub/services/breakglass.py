"""Break-glass: an agency's immediate, narrow, short access in a safeguarding emergency."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from hub.errors import BadRequest, Conflict, Forbidden, NotFound
from hub.schemas import BreakGlassesPublic, BreakGlassPublic, BreakGlassReview
from hub.services import audit, profiles
from hub.services.case_audit import case_event
from hub.services.principals import DPO, Principal
from hub.storage.models import BreakGlass, Case, Panel
from keys import KeyRing


def opened_at(*, session: Session, case_id: str, agency_id: str) -> datetime | None:
    """When this agency's break-glass window on the case opened, or None if it never did."""
    row = session.exec(
        select(BreakGlass).where(BreakGlass.case_id == case_id, BreakGlass.agency_id == agency_id)
    ).first()
    return None if row is None else row.opened_at


def open_window(
    *, session: Session, case_id: str, agency_id: str, decision_id: str, now: datetime
) -> None:
    """Record the window's opening on the first allowed break-glass request; later requests
    reuse it, so the window cannot be renewed by asking again."""
    if opened_at(session=session, case_id=case_id, agency_id=agency_id) is None:
        session.add(
            BreakGlass(case_id=case_id, agency_id=agency_id, opened_at=now, decision_id=decision_id)
        )


def _note_ad(window_id: str) -> bytes:
    return f"break_glass/{window_id}/note".encode()


def _max_hours(*, session: Session, case: Case) -> int:
    panel = session.get(Panel, case.panel_id)
    return profiles.break_glass_hours(panel.profile if panel is not None else "")


def _public(*, session: Session, keyring: KeyRing, row: BreakGlass, case: Case) -> BreakGlassPublic:
    note = (
        keyring.decrypt(row.review_note_ciphertext, associated_data=_note_ad(row.id)).decode()
        if row.review_note_ciphertext is not None
        else None
    )
    return BreakGlassPublic(
        id=row.id,
        case_id=row.case_id,
        agency=row.agency_id,
        opened_at=row.opened_at,
        expires_at=row.opened_at + timedelta(hours=_max_hours(session=session, case=case)),
        status="open" if row.reviewed_at is None else "reviewed",
        reviewed_at=row.reviewed_at,
        reviewed_by=row.reviewed_by,
        justified=row.review_justified,
        note=note,
    )


def _require_dpo(principal: Principal) -> str:
    """The DPO's panel; raises Forbidden for anyone else."""
    if principal.kind != "user" or not principal.has_role(DPO) or principal.panel_id is None:
        raise Forbidden("only a data protection officer of the panel may review break-glass")
    return principal.panel_id


def list_windows(
    *, session: Session, keyring: KeyRing, principal: Principal, status: str | None
) -> BreakGlassesPublic:
    """The DPO's review queue: every break-glass window on the panel's cases, oldest first;
    `status` narrows it to `open` (not yet reviewed) or `reviewed`. Raises Forbidden."""
    panel_id = _require_dpo(principal)
    query = (
        select(BreakGlass, Case)
        .join(Case, col(Case.id) == col(BreakGlass.case_id))
        .where(Case.panel_id == panel_id)
    )
    if status == "open":
        query = query.where(col(BreakGlass.reviewed_at).is_(None))
    elif status == "reviewed":
        query = query.where(col(BreakGlass.reviewed_at).is_not(None))
    elif status is not None:
        raise BadRequest("status must be open or reviewed")
    rows = session.exec(query.order_by(col(BreakGlass.opened_at))).all()
    data = [_public(session=session, keyring=keyring, row=row, case=case) for row, case in rows]
    return BreakGlassesPublic(data=data, count=len(data))


def review_window(
    *,
    session: Session,
    keyring: KeyRing,
    principal: Principal,
    window_id: str,
    review: BreakGlassReview,
    now: datetime,
) -> BreakGlassPublic:
    """The DPO marks a window justified or not, with a note. Raises NotFound (not the DPO's
    panel), Forbidden (not a DPO) or Conflict (already reviewed)."""
    row = session.get(BreakGlass, window_id)
    case = session.get(Case, row.case_id) if row is not None else None
    if row is None or case is None or case.panel_id not in principal.panels:
        raise NotFound("break-glass window not found")
    _require_dpo(principal)
    if row.reviewed_at is not None:
        raise Conflict("break-glass window was already reviewed")
    row.reviewed_at = now
    row.reviewed_by = principal.actor
    row.review_justified = review.justified
    row.review_note_ciphertext = keyring.encrypt(
        review.note.encode(), associated_data=_note_ad(row.id)
    )
    session.add(row)
    case_event(
        session=session,
        keyring=keyring,
        actor=principal.actor,
        case=case,
        kind="break_glass_reviewed",
        now=now,
        details={
            "break_glass": row.id,
            "agency": row.agency_id,
            "decision_id": row.decision_id,
            "justified": review.justified,
        },
    )
    audit.commit(session=session)
    return _public(session=session, keyring=keyring, row=row, case=case)
