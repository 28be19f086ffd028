"""Consent notifications to agencies: what the panel's coordinator sees and can resend."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from hub.api.deps import CurrentPrincipal, NowDep, PathId, SessionDep
from hub.schemas import NotificationPublic, NotificationsPublic
from hub.services import notifications

router = APIRouter(tags=["notifications"])


@router.get("/v1/notifications", response_model=NotificationsPublic)
def list_notifications(
    principal: CurrentPrincipal,
    session: SessionDep,
    status: Literal["pending", "delivered", "failed"] | None = None,
    case_id: Annotated[str | None, Query(max_length=36)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> NotificationsPublic:
    """Notifications on the coordinator's panel's cases, newest first; `status=failed` lists
    the agencies that could not be told."""
    return notifications.list_notifications(
        session=session, principal=principal, status=status, case_id=case_id, limit=limit
    )


@router.post("/v1/notifications/{notification_id}/retry", response_model=NotificationPublic)
def retry_notification(
    notification_id: PathId, principal: CurrentPrincipal, session: SessionDep, now: NowDep
) -> NotificationPublic:
    """Send a failed notification again (for example once the agency's endpoint is fixed)."""
    return notifications.retry_notification(
        session=session, principal=principal, notification_id=notification_id, now=now
    )
