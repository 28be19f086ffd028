"""The hub's tables.

Identity attributes, local identifiers and free text are stored encrypted (`*_ciphertext`) and
found by blind index (`*_index`); nothing here holds a person's data in clear.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.storage.types import UTCDateTime, utcnow


def new_id() -> str:
    return str(uuid.uuid4())


def _json_list() -> Any:
    return Field(default_factory=list, sa_column=Column(JSON, nullable=False))


def _json_dict() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


def _utc(*, nullable: bool = False, default_now: bool = True) -> Any:
    if default_now:
        return Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=nullable))
    return Field(default=None, sa_column=Column(UTCDateTime, nullable=nullable))


class Panel(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    # The panel profile (policies/hub/config profiles) whose stage and role tables apply.
    profile: str = Field(default="situation_table", max_length=64)
    created_at: datetime = _utc()


class Agency(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=32)
    # The parsed connector configuration (see connectors.ConnectorConfig.to_mapping).
    connector_config: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime = _utc()


class PanelMembership(SQLModel, table=True):
    panel_id: str = Field(foreign_key="panel.id", primary_key=True, max_length=64)
    agency_id: str = Field(foreign_key="agency.id", primary_key=True, max_length=64)


class ApiClient(SQLModel, table=True):
    __tablename__ = "api_client"

    client_id: str = Field(primary_key=True, max_length=128)
    agency_id: str = Field(foreign_key="agency.id", index=True, max_length=64)
    # The client's public keys as a JWKS document; assertions must be signed by one of them.
    jwks: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    active: bool = True
    created_at: datetime = _utc()


class UsedAssertion(SQLModel, table=True):
    """Client assertion ids already seen, so a replayed assertion is refused."""

    __tablename__ = "used_assertion"

    client_id: str = Field(primary_key=True, max_length=128)
    jti: str = Field(primary_key=True, max_length=200)
    expires_at: datetime = _utc()


class User(SQLModel, table=True):
    __tablename__ = "hub_user"

    username: str = Field(primary_key=True, max_length=64)
    password_hash: str = Field(sa_column=Column(Text, nullable=False))
    role: str = Field(max_length=32)  # coordinator, dpo, admin
    panel_id: str | None = Field(default=None, foreign_key="panel.id", max_length=64)
    active: bool = True
    created_at: datetime = _utc()


class Subject(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    identity_ciphertext: str = Field(sa_column=Column(Text, nullable=False))
    # Blind index over the normalised name and date of birth, to link referrals about one person.
    identity_index: str = Field(index=True, max_length=128)
    # Which name normaliser (hub.matching) made the indexes; NULL for subjects indexed before
    # versions were recorded. `hub keys reindex` brings every subject to the current one.
    index_version: str | None = Field(default=None, max_length=16)
    # Which blind-index key version (keys.KeyRing.blind_index_version) made the indexes of the
    # subject, its single fields and its local identifiers; NULL for subjects indexed before
    # versions were recorded, when "v1" was the only one. `hub keys rotate blind-index` brings
    # every subject to the current version.
    blind_index_version: str | None = Field(default=None, max_length=16)
    created_at: datetime = _utc()


class SubjectLocalId(SQLModel, table=True):
    """One agency's own identifier for a subject, encrypted, found through a blind index."""

    __tablename__ = "subject_local_id"
    __table_args__ = (UniqueConstraint("agency_id", "local_id_index"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    subject_id: str = Field(foreign_key="subject.id", index=True, max_length=36)
    agency_id: str = Field(foreign_key="agency.id", max_length=64)
    local_id_ciphertext: str = Field(sa_column=Column(Text, nullable=False))
    local_id_index: str = Field(max_length=128)


class Case(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    panel_id: str = Field(foreign_key="panel.id", index=True, max_length=64)
    subject_id: str = Field(foreign_key="subject.id", index=True, max_length=36)
    stage: str = Field(max_length=32)
    referred_by: str = Field(foreign_key="agency.id", max_length=64)
    channel: str = Field(max_length=32)
    indicators: list[str] = _json_list()
    summary_ciphertext: str | None = Field(default=None, sa_column=Column(Text))
    lead_agency: str | None = Field(default=None, foreign_key="agency.id", max_length=64)
    designated_agencies: list[str] = _json_list()
    created_at: datetime = _utc()
    updated_at: datetime = _utc()
    # Set when the case reaches an end (`signposted` or `closed`); `hub retention run` purges
    # the case once `retain_until` has passed.
    outcome: str | None = Field(default=None, max_length=32)
    closed_at: datetime | None = _utc(nullable=True, default_now=False)
    retain_until: datetime | None = _utc(nullable=True, default_now=False)
    # Protective factors named at referral (codes from the profile's vocabulary).
    protective_factors: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    # Who put the referral into the hub: the agency system, or a coordinator entering one
    # from the helpline, the web form or another channel.
    entered_by: str | None = Field(default=None, max_length=128)


class CaseTransition(SQLModel, table=True):
    __tablename__ = "case_transition"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    case_id: str = Field(foreign_key="case.id", index=True, max_length=36)
    from_stage: str = Field(max_length=32)
    to_stage: str = Field(max_length=32)
    actor: str = Field(max_length=128)
    reason: str = Field(max_length=500)
    at: datetime = _utc()


class Consent(SQLModel, table=True):
    """A consent record (ISO/IEC TS 27560 fields); its changes are in `consent_change`."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    version: int = 1
    case_id: str = Field(foreign_key="case.id", index=True, max_length=36)
    subject_id: str = Field(foreign_key="subject.id", max_length=36)
    given_by: str = Field(max_length=32)  # subject, parent, guardian, representative
    relationship: str | None = Field(default=None, max_length=64)
    # Explicit consent (GDPR Art. 9(2)(a)) is needed before a special category such as health.
    explicit: bool = False
    recipients: list[str] = _json_list()
    purposes: list[str] = _json_list()
    categories: list[str] = _json_list()
    method: str = Field(default="written", max_length=32)
    notice_version: str = Field(default="", max_length=64)
    given_at: datetime = _utc()
    valid_from: datetime = _utc()
    valid_until: datetime | None = _utc(nullable=True, default_now=False)
    state: str = Field(default="active", max_length=16)
    evidence_ref: str | None = Field(default=None, max_length=200)
    recorded_by: str = Field(max_length=128)
    created_at: datetime = _utc()
    withdrawn_at: datetime | None = _utc(nullable=True, default_now=False)


class ConsentChange(SQLModel, table=True):
    """The append-only history of a consent: who moved it to which state, when and why."""

    __tablename__ = "consent_change"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    consent_id: str = Field(foreign_key="consent.id", index=True, max_length=36)
    version: int  # the record's version after this change; orders the history
    at: datetime = _utc()
    actor: str = Field(max_length=128)
    state: str = Field(max_length=16)
    # The reason is the coordinator's or the person's own words: kept encrypted.
    reason_ciphertext: str | None = Field(default=None, sa_column=Column(Text))


class Grant(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    case_id: str = Field(foreign_key="case.id", index=True, max_length=36)
    agency_id: str = Field(foreign_key="agency.id", max_length=64)
    purposes: list[str] = _json_list()
    categories: list[str] = _json_list()
    not_before: datetime = _utc()
    expires_at: datetime = _utc()
    legal_basis: str = Field(default="public_task", max_length=32)
    state: str = Field(default="active", max_length=16)
    granted_by: str = Field(max_length=128)
    created_at: datetime = _utc()
    revoked_at: datetime | None = _utc(nullable=True, default_now=False)


class AuditEntry(SQLModel, table=True):
    """One link of the hash chain: `entry_hash = SHA-256(prev_hash || canonical body)`.

    The body holds references and digests only, never personal data.
    """

    __tablename__ = "audit_entry"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: datetime = _utc()
    kind: str = Field(max_length=32)
    body: str = Field(sa_column=Column(Text, nullable=False))
    prev_hash: str = Field(max_length=64)
    entry_hash: str = Field(max_length=64)


class AuditNode(SQLModel, table=True):
    """The hash of one complete subtree of the audit log's RFC 9162 Merkle tree.

    Node (level, idx) covers leaves [idx * 2**level, (idx + 1) * 2**level); level 0 holds the
    leaf hashes (leaf i is entry seq i + 1). A node is written once, in the transaction that
    appends its last leaf (tree size `complete_at`), so any root or proof reads O(log n) rows.
    Like `audit_entry`, the database refuses to update or delete these rows.
    """

    __tablename__ = "audit_node"

    level: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    idx: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    digest: str = Field(max_length=64)
    complete_at: int = Field(index=True)


class AuditCheckpoint(SQLModel, table=True):
    """A signed checkpoint (C2SP tlog-checkpoint note) of the log at `tree_size`; all kept."""

    __tablename__ = "audit_checkpoint"

    tree_size: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    root_hash: str = Field(max_length=64)
    note: str = Field(sa_column=Column(Text, nullable=False))
    made_at: datetime = _utc()


class AuditHead(SQLModel, table=True):
    """The log's append cursor: one row (id 1) with the size and the last chain link.

    Every append updates it first, which takes the database's write lock (SQLite) or the row
    lock (PostgreSQL) before the head is read, so appends stay in one line across workers.
    It is a cache, never trusted: `hub audit verify` recomputes everything from the entries.
    """

    __tablename__ = "audit_head"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    size: int
    chain_hash: str = Field(max_length=64)


class BreakGlass(SQLModel, table=True):
    """An agency's emergency access on a case: opened by its first break-glass request,
    it lasts at most as long as the policy allows and is always queued for DPO review."""

    __tablename__ = "break_glass"
    __table_args__ = (UniqueConstraint("case_id", "agency_id"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    case_id: str = Field(foreign_key="case.id", index=True, max_length=36)
    agency_id: str = Field(foreign_key="agency.id", max_length=64)
    opened_at: datetime = _utc()
    decision_id: str = Field(max_length=36)
    reviewed_at: datetime | None = _utc(nullable=True, default_now=False)
    reviewed_by: str | None = Field(default=None, max_length=128)
    # The DPO's finding; the note is their own words and kept encrypted.
    review_justified: bool | None = None
    review_note_ciphertext: str | None = Field(default=None, sa_column=Column(Text))


class DecisionRecord(SQLModel, table=True):
    """One policy decision as it was made: its input (references only, no identifiers),
    its output and the policy revision. The audit entry names it by `decision_id` and carries
    the digest of `input` + `output`, so a record cannot be changed unnoticed."""

    __tablename__ = "decision_record"

    decision_id: str = Field(primary_key=True, max_length=36)
    at: datetime = _utc()
    case_id: str = Field(index=True, max_length=36)
    agency_id: str = Field(max_length=64)
    allow: bool
    policy_revision: str = Field(max_length=64)
    input: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    output: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class AgencyWebhook(SQLModel, table=True):
    """Where an agency is told about consent changes, and the secret its webhooks are signed
    with (a Standard Webhooks `whsec_` secret, encrypted with the keyring)."""

    __tablename__ = "agency_webhook"

    agency_id: str = Field(foreign_key="agency.id", primary_key=True, max_length=64)
    url: str = Field(max_length=2000)
    secret_ciphertext: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = _utc()


class ConsentNotification(SQLModel, table=True):
    """One agency to be told that a consent was withdrawn or expired, and how telling it went.

    `body` is the exact JSON sent (references and the agency's own pseudonym only), so every
    retry carries the same bytes; `last_error` is a code such as `http_500` or `timeout`.
    """

    __tablename__ = "consent_notification"
    __table_args__ = (UniqueConstraint("consent_id", "agency_id", "event"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    consent_id: str = Field(foreign_key="consent.id", max_length=36)
    case_id: str = Field(foreign_key="case.id", index=True, max_length=36)
    agency_id: str = Field(foreign_key="agency.id", max_length=64)
    event: str = Field(max_length=32)
    body: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", index=True, max_length=16)
    attempts: int = 0
    created_at: datetime = _utc()
    next_attempt_at: datetime | None = _utc(nullable=True, default_now=False)
    last_attempt_at: datetime | None = _utc(nullable=True, default_now=False)
    delivered_at: datetime | None = _utc(nullable=True, default_now=False)
    last_error: str | None = Field(default=None, max_length=64)


class AccessRequest(SQLModel, table=True):
    """An agency asking the coordinator for a grant; approving it creates the grant."""

    __tablename__ = "access_request"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    case_id: str = Field(foreign_key="case.id", index=True, max_length=36)
    agency_id: str = Field(foreign_key="agency.id", max_length=64)
    purposes: list[str] = _json_list()
    categories: list[str] = _json_list()
    # The agency's and the coordinator's own words: kept encrypted.
    justification_ciphertext: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(default="pending", max_length=16)  # pending, approved, refused
    requested_by: str = Field(max_length=128)
    requested_at: datetime = _utc()
    decided_by: str | None = Field(default=None, max_length=128)
    decided_at: datetime | None = _utc(nullable=True, default_now=False)
    reason_ciphertext: str | None = Field(default=None, sa_column=Column(Text))
    grant_id: str | None = Field(default=None, foreign_key="grant.id", max_length=36)


class PanelService(SQLModel, table=True):
    """A service a panel signposts people to: an organisation's name, kind and contact."""

    __tablename__ = "panel_service"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    panel_id: str = Field(foreign_key="panel.id", index=True, max_length=64)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=64)
    contact: str = Field(max_length=300)
    created_at: datetime = _utc()


class CaseScreening(SQLModel, table=True):
    """The screening of a case: the profile's eligibility checklist answered, and the outcome."""

    __tablename__ = "case_screening"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    case_id: str = Field(foreign_key="case.id", index=True, max_length=36)
    checklist: dict[str, Any] = _json_dict()
    eligible: bool
    outcome: str = Field(max_length=32)  # signposted, assessment
    service_id: str | None = Field(default=None, foreign_key="panel_service.id", max_length=36)
    recorded_by: str = Field(max_length=128)
    at: datetime = _utc()


class CaseAssessment(SQLModel, table=True):
    """The panel's structured assessment: the profile's threshold dimensions rated, risk and
    protective factors (codes), the agencies present, and the decision."""

    __tablename__ = "case_assessment"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    case_id: str = Field(foreign_key="case.id", index=True, max_length=36)
    dimensions: dict[str, Any] = _json_dict()
    risk_factors: list[str] = _json_list()
    protective_factors: list[str] = _json_list()
    agencies_present: list[str] = _json_list()
    threshold_met: bool
    decision: str = Field(max_length=32)  # intervention, closed
    recorded_by: str = Field(max_length=128)
    at: datetime = _utc()


class InterventionPlan(SQLModel, table=True):
    """A voluntary intervention: who leads, who assists, who provides, when it is reviewed,
    and the consent it rests on."""

    __tablename__ = "intervention_plan"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    case_id: str = Field(foreign_key="case.id", index=True, max_length=36)
    subject_id: str = Field(foreign_key="subject.id", index=True, max_length=36)
    lead_agency: str = Field(foreign_key="agency.id", max_length=64)
    assisting_agencies: list[str] = _json_list()
    provider: str = Field(max_length=200)
    review_dates: list[str] = _json_list()
    consent_id: str = Field(foreign_key="consent.id", max_length=36)
    state: str = Field(default="active", max_length=16)  # active, ended
    load_warning: bool = False
    recorded_by: str = Field(max_length=128)
    created_at: datetime = _utc()
    ended_at: datetime | None = _utc(nullable=True, default_now=False)


class SubjectKey(SQLModel, table=True):
    """A subject's own data key, wrapped by the keyring's key-encryption key.

    Deleting the row crypto-shreds the subject: every value sealed under the key is unreadable.
    """

    __tablename__ = "subject_key"

    subject_id: str = Field(foreign_key="subject.id", primary_key=True, max_length=36)
    wrapped_key: str = Field(sa_column=Column(Text, nullable=False))
    # Which key-encryption key wraps it, so a rotation finds the rows still to re-wrap.
    kek_kid: str = Field(index=True, max_length=64)
    created_at: datetime = _utc()


class KeyRotation(SQLModel, table=True):
    """Progress of one re-wrapping or re-encryption run, so an interrupted run resumes."""

    __tablename__ = "key_rotation"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    purpose: str = Field(index=True, max_length=32)
    target_kid: str = Field(max_length=64)
    status: str = Field(max_length=16)  # running, done
    processed: int = 0
    batches: int = 0
    started_at: datetime = _utc()
    updated_at: datetime = _utc()
    finished_at: datetime | None = _utc(nullable=True, default_now=False)


class SubjectFieldIndex(SQLModel, table=True):
    """Blind indexes of a subject's single identity fields, to offer near matches (all but one
    field equal) to a coordinator. Never used to merge on its own."""

    __tablename__ = "subject_field_index"

    subject_id: str = Field(foreign_key="subject.id", primary_key=True, max_length=36)
    given_name_index: str = Field(index=True, max_length=128)
    family_name_index: str = Field(index=True, max_length=128)
    date_of_birth_index: str = Field(index=True, max_length=128)


class PossibleMatch(SQLModel, table=True):
    """A referral whose person differs from an existing subject in one field: for the
    coordinator to confirm or reject, never merged silently."""

    __tablename__ = "possible_match"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    case_id: str = Field(foreign_key="case.id", index=True, max_length=36)
    candidate_subject_id: str = Field(foreign_key="subject.id", max_length=36)
    differing_field: str = Field(max_length=32)
    status: str = Field(default="open", max_length=16)  # open, confirmed, rejected
    created_at: datetime = _utc()


class ReidentificationRequest(SQLModel, table=True):
    """A request to learn who a case's subject is, needing a coordinator and a DPO to approve
    when the requester is not the coordinator of an open case of that subject."""

    __tablename__ = "reidentification_request"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    case_id: str = Field(foreign_key="case.id", index=True, max_length=36)
    requested_by: str = Field(max_length=128)
    reason_code: str = Field(max_length=64)
    # The requester's words may name people: sealed under the subject's data key.
    reason_ciphertext: str = Field(sa_column=Column(Text, nullable=False))
    # [{"actor": ..., "role": ...}], the requester's own approval first.
    approvals: list[dict[str, str]] = _json_list()
    status: str = Field(max_length=16)  # pending, approved, used
    created_at: datetime = _utc()
    decided_at: datetime | None = _utc(nullable=True, default_now=False)


class WebSession(SQLModel, table=True):
    """A person's signed-in browser session. Only a hash of the cookie's value is stored, so
    a copy of the database cannot be used to sign in."""

    __tablename__ = "web_session"

    id_hash: str = Field(primary_key=True, max_length=64)
    username: str = Field(foreign_key="hub_user.username", index=True, max_length=64)
    created_at: datetime = _utc()
    last_seen_at: datetime = _utc()
    ended_at: datetime | None = _utc(nullable=True, default_now=False)


class SignInFailure(SQLModel, table=True):
    """One failed sign-in, counted per account name for the lockout window."""

    __tablename__ = "sign_in_failure"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    # A hash of the name typed, so a password typed into the name field is never stored.
    account_hash: str = Field(index=True, max_length=64)
    at: datetime = _utc()
