"""The DPO's review of break-glass access."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from hub.api.deps import CurrentPrincipal, KeyRingDep, NowDep, PathId, SessionDep
from hub.schemas import BreakGlassesPublic, BreakGlassPublic, BreakGlassReview
from hub.services import breakglass

router = APIRouter(tags=["break-glass"])


@router.get("/v1/break-glass", response_model=BreakGlassesPublic)
def list_break_glass(
    principal: CurrentPrincipal,
    session: SessionDep,
    keyring: KeyRingDep,
    status: Literal["open", "reviewed"] | None = None,
) -> BreakGlassesPublic:
    """The panel's break-glass windows for its DPO; `status=open` is the review queue."""
    return breakglass.list_windows(
        session=session, keyring=keyring, principal=principal, status=status
    )


@router.post("/v1/break-glass/{window_id}/review", response_model=BreakGlassPublic)
def review_break_glass(
    window_id: PathId,
    body: BreakGlassReview,
    principal: CurrentPrincipal,
    session: SessionDep,
    keyring: KeyRingDep,
    now: NowDep,
) -> BreakGlassPublic:
    """Mark a window justified or not, with a note; it leaves the open queue."""
    return breakglass.review_window(
        session=session,
        keyring=keyring,
        principal=principal,
        window_id=window_id,
        review=body,
        now=now,
    )
