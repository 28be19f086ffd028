"""What the hub sends to the policy and what it reads back (DESIGN section 6).

The input models hold plain strings for purposes, categories and stages on purpose: the
policy, not the input model, decides what is known, so an unknown purpose becomes a deny with
the reason ``unknown_purpose`` instead of an error before the policy was even asked.

Every time is timezone-aware, kept in UTC and written for the policy as RFC 3339 with ``Z``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timezone-aware time, normalised to UTC, serialised as RFC 3339 with ``Z``.

pydantic itself writes a UTC time as ``2026-11-28T12:00:00Z`` (``.ffffffZ`` when it has
microseconds), exactly as ``isoformat()`` with ``Z`` would; leaving it to pydantic's own
serialiser rather than a Python function keeps a Python call per time out of every decision.
"""


class _InputModel(BaseModel):
    # Every field that can change a decision is required: no silent defaults.
    model_config = ConfigDict(frozen=True, extra="forbid")


class RequesterInput(_InputModel):
    """The agency system (and, where known, the person) asking."""

    agency: str
    agency_kind: str
    client: str
    user: str | None = None
    roles: list[str]
    panels: list[str]
    """The panels the requesting agency is a member of."""


class CaseInput(_InputModel):
    """What the policy may know about the case: never the subject's identity."""

    id: str
    panel: str
    profile: str
    """The panel's profile (``data.hub.config.profiles``); an unknown one denies."""
    stage: str
    lead_agency: str | None
    designated_agencies: list[str]
    subject_is_minor: StrictBool
    """Under 18 (the hub-wide reading, kept for the audit log and the case workflow)."""
    subject_age: Annotated[StrictInt, Field(ge=0)] | None
    """Whole years on the decision day; None when unknown, which the policy treats as under
    the profile's age of consent (the safer reading)."""


class RequestInput(_InputModel):
    """What is asked for, and why."""

    purpose: str
    categories: list[str]
    justification: str
    break_glass: StrictBool
    break_glass_since: UtcDatetime | None
    """When this agency's break-glass window on the case opened; None if it never did (a
    break-glass request then opens it now). Only set on break-glass requests."""


class ConsentInput(_InputModel):
    """One consent record in scope of the case; ``valid_until`` None means open-ended."""

    id: str
    given_by: str
    """subject, parent, guardian or representative."""
    explicit: StrictBool
    """Explicit consent, the only kind that covers a special category (health)."""
    recipients: list[str]
    purposes: list[str]
    categories: list[str]
    valid_from: UtcDatetime
    valid_until: UtcDatetime | None
    state: str


class GrantInput(_InputModel):
    """One coordinator's grant on the case, in force for ``not_before <= now < expires_at``."""

    id: str
    agency: str
    purposes: list[str]
    categories: list[str]
    not_before: UtcDatetime
    expires_at: UtcDatetime
    state: str
    legal_basis: str


class PolicyInput(_InputModel):
    """The whole input to one policy decision."""

    requester: RequesterInput
    case: CaseInput
    request: RequestInput
    consents: list[ConsentInput]
    grants: list[GrantInput]
    now: UtcDatetime

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON document the policy sees as ``input``; times as RFC 3339 with ``Z``."""
        return self.model_dump(mode="json")


class Reason(BaseModel):
    """Why a decision came out as it did: a machine code and a sentence for people."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    code: StrictStr
    message: StrictStr


class PolicyDecision(BaseModel):
    """One decision, read strictly from the policy's output.

    Strict on purpose: ``allow`` must be a real boolean (``"false"`` or ``1`` is rejected), and
    a decision that contradicts itself (a deny that permits categories, an allow that permits
    nothing or names no legal basis, a deny with no reason) is rejected, so a broken policy
    can only ever lead to a deny.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    allow: StrictBool
    permitted_categories: list[StrictStr]
    legal_basis: StrictStr | None
    obligations: list[StrictStr]
    reasons: list[Reason]
    revision: StrictStr

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.allow:
            if not self.permitted_categories:
                raise ValueError("an allow must permit at least one category")
            if self.legal_basis is None:
                raise ValueError("an allow must name a legal basis")
        else:
            if self.permitted_categories:
                raise ValueError("a deny must permit no category")
            if self.legal_basis is not None:
                raise ValueError("a deny must name no legal basis")
            if not self.reasons:
                raise ValueError("a deny must give at least one reason")
        return self
