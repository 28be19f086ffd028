"""What the API accepts and returns. Routes return only `*Public` models, which carry
pseudonyms, never raw identifiers."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from hub.audit.public import ReceiptPublic
from hub.matching import parse_date
from hub.vocabulary import (
    Category,
    Channel,
    ConsentGiver,
    GrantLegalBasis,
    Outcome,
    Purpose,
    Stage,
)

Slug = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")
# List items a client sends: an agency's id, or a short code from a vocabulary. Bounded here so
# the OpenAPI document states the limit and an oversized item is refused before any check.
AgencyRef = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Code = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Strict(BaseModel):
    # Unknown fields are refused, so a typo never silently drops a restriction.
    model_config = ConfigDict(extra="forbid")


class TokenPublic(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105  (a token type, not a secret)
    expires_in: int


class LoginCreate(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class IdentityCreate(Strict):
    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    date_of_birth: date
    # The referring agency's own identifier for the person, if it has one.
    local_id: str | None = Field(default=None, min_length=1, max_length=100)

    @field_validator("date_of_birth", mode="before")
    @classmethod
    def _date_forms(cls, value: object) -> date:
        # Several written forms are accepted; see hub.matching for which and why day first.
        return parse_date(value)


class ReferralCreate(Strict):
    panel: str = Slug
    subject: IdentityCreate
    channel: Channel = "agency"
    indicators: list[Code] = Field(min_length=1, max_length=20)
    protective_factors: list[Code] = Field(default_factory=list, max_length=20)
    summary: str = Field(default="", max_length=2000)
    # Only when a coordinator enters a referral from another channel: the member agency that
    # received it (e.g. the one running the helpline).
    received_by: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("indicators", "protective_factors")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        for code in value:
            if not (1 <= len(code) <= 64) or not code.replace("_", "").isalnum():
                raise ValueError("indicator codes are short lower-case words joined by _")
        return sorted(set(value))


class CasePublic(BaseModel):
    id: str
    panel: str
    stage: Stage
    subject: str  # the caller's own pseudonym for the person
    referred_by: str
    channel: str
    indicators: list[str]
    protective_factors: list[str] = Field(default_factory=list)
    lead_agency: str | None
    designated_agencies: list[str]
    summary: str | None = None  # coordinators only
    created_at: datetime
    updated_at: datetime
    outcome: str | None = None
    closed_at: datetime | None = None
    retain_until: datetime | None = None


class TransitionCreate(Strict):
    to: Stage
    reason: str = Field(min_length=1, max_length=500)
    lead_agency: str | None = Field(default=None, max_length=64)
    designated_agencies: list[AgencyRef] | None = Field(default=None, max_length=20)
    # Required sense when closing; a close without one records `no_further_action`.
    outcome: Outcome | None = None


class ConsentCreate(Strict):
    # A refusal is recorded too, so the person is not asked again and again.
    decision: Literal["given", "refused"] = "given"
    given_by: ConsentGiver
    relationship: str | None = Field(default=None, max_length=64)
    # True only where the person explicitly agreed to special categories (e.g. health).
    explicit: bool = False
    recipients: list[AgencyRef] = Field(min_length=1, max_length=20)
    purposes: list[Purpose] = Field(min_length=1, max_length=6)
    categories: list[Category] = Field(min_length=1, max_length=9)
    method: Literal["written", "recorded_verbal", "digital"] = "written"
    # A document id or the hash of the signed form, never the scan itself.
    evidence_ref: str | None = Field(default=None, max_length=200)
    notice_version: str = Field(default="", max_length=64)
    given_at: datetime | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None


class ConsentChangePublic(BaseModel):
    at: datetime
    actor: str
    state: str


class ConsentPublic(BaseModel):
    id: str
    version: int
    case_id: str
    given_by: str
    relationship: str | None
    explicit: bool
    recipients: list[str]
    purposes: list[str]
    categories: list[str]
    method: str
    evidence_ref: str | None
    notice_version: str
    given_at: datetime
    valid_from: datetime
    valid_until: datetime | None
    state: str
    withdrawn_at: datetime | None
    history: list[ConsentChangePublic]


class ConsentsPublic(BaseModel):
    data: list[ConsentPublic]
    count: int


class ConsentReceiptPublic(BaseModel):
    consent_id: str
    receipt: str  # a JWS signed by the hub, verifiable with /.well-known/jwks.json


class ConsentWithdraw(Strict):
    reason: str = Field(min_length=1, max_length=500)


class GrantCreate(Strict):
    agency: str = Field(min_length=1, max_length=64)
    purposes: list[Purpose] = Field(min_length=1, max_length=6)
    categories: list[Category] = Field(min_length=1, max_length=9)
    not_before: datetime | None = None
    expires_at: datetime
    legal_basis: GrantLegalBasis = "public_task"


class GrantPublic(BaseModel):
    id: str
    case_id: str
    agency: str
    purposes: list[str]
    categories: list[str]
    not_before: datetime
    expires_at: datetime
    legal_basis: str
    state: str
    revoked_at: datetime | None


class GrantRevoke(Strict):
    reason: str = Field(min_length=1, max_length=500)


class DisclosureCreate(Strict):
    purpose: Purpose
    categories: list[Category] = Field(min_length=1, max_length=9)
    justification: str | None = Field(default=None, max_length=1000)
    break_glass: bool = False


class SourcePublic(BaseModel):
    status: Literal["ok", "failed", "timed_out"]
    error: str | None = None


class DisclosedRecord(BaseModel):
    source: str
    fields: dict[str, Any]


class DisclosurePublic(BaseModel):
    decision_id: str
    case_id: str
    subject: str
    purpose: str
    legal_basis: str | None
    permitted_categories: list[str]
    obligations: list[str]
    reasons: list[dict[str, str]]
    policy_revision: str
    records: dict[str, list[DisclosedRecord]]
    sources: dict[str, SourcePublic]
    complete: bool
    audit_index: int
    receipt: ReceiptPublic


class AuditVerifyPublic(BaseModel):
    ok: bool
    entries: int
    head_hash: str


class NotificationPublic(BaseModel):
    """One agency's notice that a consent was withdrawn or expired, and how delivering it went.

    The body sent (with the agency's pseudonym) and the signing secret are never returned.
    """

    id: str  # also the webhook-id header the agency received
    event: Literal["consent.withdrawn", "consent.expired"]
    case_id: str
    consent_id: str
    agency: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None  # a code such as http_500, timeout, connect_error, no_webhook


class NotificationsPublic(BaseModel):
    data: list[NotificationPublic]
    count: int


class AccessRequestCreate(Strict):
    purpose: Purpose
    categories: list[Category] = Field(min_length=1, max_length=9)
    justification: str = Field(min_length=1, max_length=1000)


class AccessRequestDecision(Strict):
    decision: Literal["approve", "refuse"]
    # For an approval: the grant's window (the profile caps its length).
    not_before: datetime | None = None
    expires_at: datetime | None = None
    legal_basis: GrantLegalBasis = "public_task"
    # For a refusal: why, in words the agency can act on.
    reason: str | None = Field(default=None, min_length=1, max_length=500)


class AccessRequestPublic(BaseModel):
    id: str
    case_id: str
    agency: str
    purpose: str
    categories: list[str]
    justification: str
    state: Literal["pending", "approved", "refused"]
    requested_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    reason: str | None
    grant: GrantPublic | None


class AccessRequestsPublic(BaseModel):
    data: list[AccessRequestPublic]
    count: int


class BreakGlassPublic(BaseModel):
    id: str
    case_id: str
    agency: str
    opened_at: datetime
    expires_at: datetime
    status: Literal["open", "reviewed"]
    reviewed_at: datetime | None
    reviewed_by: str | None
    justified: bool | None
    note: str | None


class BreakGlassesPublic(BaseModel):
    data: list[BreakGlassPublic]
    count: int


class BreakGlassReview(Strict):
    justified: bool
    note: str = Field(min_length=1, max_length=1000)


class ServiceCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(min_length=1, max_length=64)
    contact: str = Field(min_length=1, max_length=300)


class ServicePublic(BaseModel):
    id: str
    panel: str
    name: str
    kind: str
    contact: str


class ServicesPublic(BaseModel):
    data: list[ServicePublic]
    count: int


class ScreeningCreate(Strict):
    # Each question of the profile's eligibility checklist, answered yes or no.
    checklist: dict[str, bool]
    outcome: Literal["signposted", "assessment"]
    service_id: str | None = Field(default=None, max_length=36)  # where a signposted case goes
    designated_agencies: list[AgencyRef] | None = Field(default=None, max_length=20)
    reason: str = Field(default="screening", min_length=1, max_length=500)


class ScreeningPublic(BaseModel):
    id: str
    case_id: str
    checklist: dict[str, bool]
    eligible: bool
    outcome: str
    service: ServicePublic | None
    recorded_by: str
    at: datetime
    case: CasePublic


Rating = Literal["none", "low", "medium", "high"]


class AssessmentCreate(Strict):
    # One rating for each of the profile's threshold dimensions.
    dimensions: dict[str, Rating]
    risk_factors: list[Code] = Field(default_factory=list, max_length=30)
    protective_factors: list[Code] = Field(default_factory=list, max_length=30)
    agencies_present: list[AgencyRef] = Field(min_length=1, max_length=20)
    threshold_met: bool
    decision: Literal["intervention", "closed"]
    reason: str = Field(default="assessment", min_length=1, max_length=500)


class AssessmentPublic(BaseModel):
    id: str
    case_id: str
    threshold: str
    dimensions: dict[str, str]
    risk_factors: list[str]
    protective_factors: list[str]
    agencies_present: list[str]
    threshold_met: bool
    decision: str
    recorded_by: str
    at: datetime
    case: CasePublic


class InterventionCreate(Strict):
    lead_agency: str = Field(min_length=1, max_length=64)
    assisting_agencies: list[AgencyRef] = Field(default_factory=list, max_length=20)
    provider: str = Field(min_length=1, max_length=200)
    review_dates: list[date] = Field(min_length=1, max_length=24)
    # The person's voluntary agreement: a consent recorded on this case.
    consent_id: str = Field(min_length=1, max_length=36)


class InterventionPublic(BaseModel):
    id: str
    case_id: str
    lead_agency: str
    assisting_agencies: list[str]
    provider: str
    review_dates: list[date]
    consent_id: str
    state: str
    created_at: datetime
    warnings: list[str]
    case: CasePublic


class OversightDecisionPublic(BaseModel):
    """One disclosure or denial as a DPO sees it: references and codes, no personal data."""

    decision_id: str
    at: datetime
    decision: Literal["allow", "deny"]
    agency: str
    case_id: str
    subject_ref: str  # the audit log's pseudonym for the person
    purpose: str
    categories_requested: list[str]
    categories_permitted: list[str]
    legal_basis: str | None
    reasons: list[str]
    break_glass: bool
    policy_revision: str


class OversightDecisionsPublic(BaseModel):
    data: list[OversightDecisionPublic]
    count: int
