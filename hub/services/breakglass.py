"""Break-glass: an agency's immediate, narrow, short access in a safeguarding emergency."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from hub.storage.models import BreakGlass


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
