"""What a coordinator reads about the panel: its cases by stage, a case's stage history and its
grants with the time they have left. Read-only; every change goes through the services that
own it (cases, consents, grants, access_requests)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, func, select

from hub.errors import Forbidden
from hub.schemas import CasePublic, GrantPublic
from hub.services import cases, grants
from hub.services.access import require_coordinator, visible_case
from hub.services.principals import COORDINATOR, Principal
from hub.storage.models import AccessRequest, Agency, Case, CaseTransition, Grant, Panel
from hub.vocabulary import STAGES, TRANSITIONS
from keys import KeyRing


@dataclass(frozen=True)
class CaseCard:
    case: CasePublic
    pending_requests: int


@dataclass(frozen=True)
class PanelBoard:
    panel_id: str
    panel_name: str
    # Every stage in workflow order, each with its cases, most recently changed first.
    stages: list[tuple[str, list[CaseCard]]]


@dataclass(frozen=True)
class StageChange:
    from_stage: str
    to_stage: str
    actor: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class GrantView:
    grant: GrantPublic
    # Whether the grant lets its agency in now, and for how much longer (None when it does not).
    in_effect: bool
    time_left: timedelta | None


def _coordinated_panel(principal: Principal) -> str:
    if not principal.has_role(COORDINATOR) or principal.panel_id is None:
        raise Forbidden("only a panel's coordinator may see its cases")
    return principal.panel_id


def board(*, session: Session, keyring: KeyRing, principal: Principal) -> PanelBoard:
    """The coordinator's own panel, its cases grouped by stage. Raises Forbidden otherwise."""
    panel_id = _coordinated_panel(principal)
    panel = session.get(Panel, panel_id)
    rows = session.exec(
        select(Case).where(Case.panel_id == panel_id).order_by(col(Case.updated_at).desc())
    ).all()
    pending = dict(
        session.exec(
            select(AccessRequest.case_id, func.count())
            .join(Case, col(Case.id) == col(AccessRequest.case_id))
            .where(Case.panel_id == panel_id, AccessRequest.state == "pending")
            .group_by(col(AccessRequest.case_id))
        ).all()
    )
    by_stage: dict[str, list[CaseCard]] = {stage: [] for stage in STAGES}
    for row in rows:
        card = CaseCard(
            case=cases.case_view(keyring=keyring, principal=principal, case=row),
            pending_requests=int(pending.get(row.id, 0)),
        )
        by_stage.setdefault(row.stage, []).append(card)
    return PanelBoard(
        panel_id=panel_id,
        panel_name=panel.name if panel is not None else panel_id,
        stages=list(by_stage.items()),
    )


def stage_history(*, session: Session, principal: Principal, case_id: str) -> list[StageChange]:
    """Every stage change of the case, oldest first. Raises NotFound or Forbidden."""
    case = visible_case(session=session, principal=principal, case_id=case_id)
    require_coordinator(principal=principal, case=case)
    rows = session.exec(
        select(CaseTransition)
        .where(CaseTransition.case_id == case.id)
        .order_by(col(CaseTransition.at), col(CaseTransition.id))
    ).all()
    return [
        StageChange(
            from_stage=r.from_stage, to_stage=r.to_stage, actor=r.actor, reason=r.reason, at=r.at
        )
        for r in rows
    ]


def case_grants(
    *, session: Session, principal: Principal, case_id: str, now: datetime
) -> list[GrantView]:
    """Every grant on the case, newest first, with its time left. Raises NotFound or
    Forbidden."""
    case = visible_case(session=session, principal=principal, case_id=case_id)
    require_coordinator(principal=principal, case=case)
    rows = session.exec(
        select(Grant).where(Grant.case_id == case.id).order_by(col(Grant.created_at).desc())
    ).all()
    views = []
    for row in rows:
        in_effect = row.state == "active" and row.not_before <= now < row.expires_at
        views.append(
            GrantView(
                grant=grants.public(row),
                in_effect=in_effect,
                time_left=row.expires_at - now if in_effect else None,
            )
        )
    return views


def next_stages(stage: str) -> list[str]:
    """The stages a case may move to from `stage`, in workflow order."""
    allowed = TRANSITIONS.get(stage, frozenset())
    return [s for s in STAGES if s in allowed]


def panel_agencies(*, session: Session, principal: Principal) -> list[tuple[str, str]]:
    """(id, name) of the coordinator's panel's agencies, for the forms' choices."""
    panel_id = _coordinated_panel(principal)
    ids = cases.panel_agencies(session=session, panel_id=panel_id)
    rows = session.exec(select(Agency).where(col(Agency.id).in_(ids)).order_by(Agency.name)).all()
    return [(a.id, a.name) for a in rows]
