"""Decision records: every policy decision kept with its input and output, for review and for
replaying a candidate policy against what really happened."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError
from sqlmodel import Session, col, select

from hub.policy import PolicyDecision, PolicyEngine, PolicyEngineError, PolicyInput
from hub.services import audit
from hub.services.audit_writer import Row
from hub.storage.models import DecisionRecord


def record(
    *,
    decision_id: str,
    policy_input: PolicyInput,
    decision: PolicyDecision,
    case_id: str,
    agency_id: str,
    now: datetime,
) -> tuple[Row, str]:
    """The record as a row for the audit writer to insert with its entry (one transaction, so
    a record exists exactly when its entry does), and the digest the entry carries."""
    row = DecisionRecord(
        decision_id=decision_id,
        at=now,
        case_id=case_id,
        agency_id=agency_id,
        allow=decision.allow,
        policy_revision=decision.revision,
        input=policy_input.to_json_dict(),
        output=decision.model_dump(mode="json"),
    )
    table = DecisionRecord.__table__  # type: ignore[attr-defined]
    return Row(table=table, values=row.model_dump()), record_digest(row)


def record_digest(row: DecisionRecord) -> str:
    return audit.digest({"input": row.input, "output": row.output})


Change = Literal["allow_to_deny", "deny_to_allow", "widened", "narrowed", "unchanged", "error"]


@dataclass(frozen=True)
class Replayed:
    decision_id: str
    at: datetime
    case_id: str
    agency_id: str
    purpose: str
    before_allow: bool
    after_allow: bool | None
    before_categories: tuple[str, ...]
    after_categories: tuple[str, ...]
    change: Change
    after_reasons: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id,
            "at": self.at.isoformat(),
            "case_id": self.case_id,
            "agency": self.agency_id,
            "purpose": self.purpose,
            "before": {"allow": self.before_allow, "categories": list(self.before_categories)},
            "after": {"allow": self.after_allow, "categories": list(self.after_categories)},
            "change": self.change,
            "after_reasons": list(self.after_reasons),
        }


def _classify(before: PolicyDecision, after: PolicyDecision) -> Change:
    if before.allow and not after.allow:
        return "allow_to_deny"
    if not before.allow and after.allow:
        return "deny_to_allow"
    old, new = set(before.permitted_categories), set(after.permitted_categories)
    if new == old:
        return "unchanged"
    # Any category gained counts as widened, even if another was lost: for privacy, the gain
    # is what a reviewer must see.
    return "narrowed" if new < old else "widened"


def replay(
    *, session: Session, candidate: PolicyEngine, since: datetime | None = None
) -> Iterator[Replayed]:
    """Re-decide every stored decision (optionally from `since`) with `candidate`.

    A record whose input no longer fits the input model, or that the candidate cannot decide,
    is reported with change "error" rather than skipped, so nothing silently drops out.
    """
    query = select(DecisionRecord).order_by(col(DecisionRecord.at), col(DecisionRecord.decision_id))
    if since is not None:
        query = query.where(col(DecisionRecord.at) >= since)
    for row in session.exec(query):
        before = PolicyDecision.model_validate(row.output)
        purpose = str(row.input.get("request", {}).get("purpose", ""))
        try:
            after: PolicyDecision | None = candidate.decide(PolicyInput.model_validate(row.input))
        except (ValidationError, PolicyEngineError):
            after = None
        yield Replayed(
            decision_id=row.decision_id,
            at=row.at,
            case_id=row.case_id,
            agency_id=row.agency_id,
            purpose=purpose,
            before_allow=before.allow,
            after_allow=None if after is None else after.allow,
            before_categories=tuple(before.permitted_categories),
            after_categories=() if after is None else tuple(after.permitted_categories),
            change="error" if after is None else _classify(before, after),
            after_reasons=() if after is None else tuple(sorted({r.code for r in after.reasons})),
        )
