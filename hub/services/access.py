"""Who may see or act on a case. Seeing comes first: a caller who may not see a case is told
it does not exist."""

from __future__ import annotations

from sqlmodel import Session

from hub.errors import Forbidden, NotFound
from hub.services.principals import COORDINATOR, DPO, Principal
from hub.storage.models import Case


def visible_case(*, session: Session, principal: Principal, case_id: str) -> Case:
    """The case, if the caller's agency or panel role reaches it; else NotFound."""
    case = session.get(Case, case_id)
    if case is None or case.panel_id not in principal.panels:
        raise NotFound("case not found")
    if principal.kind == "user" and not (
        principal.has_role(COORDINATOR) or principal.has_role(DPO)
    ):
        raise NotFound("case not found")
    return case


def require_coordinator(*, principal: Principal, case: Case) -> None:
    """Raises Forbidden unless the caller coordinates the case's panel."""
    if not (principal.has_role(COORDINATOR) and principal.panel_id == case.panel_id):
        raise Forbidden("only a coordinator of the case's panel may do this")
