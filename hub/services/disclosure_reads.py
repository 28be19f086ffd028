"""What a disclosure reads before it decides and fetches, in as few round trips as there are
steps: the case with its subject, panel and the requester's agency; the terms that may cover the
request (active consents and grants); and the agencies to ask with the subject's identifiers.

Read as columns into small frozen dataclasses rather than as entities: these reads run on every
request, and building ORM objects cost more than the queries. Nothing here is remembered across
requests: a consent withdrawn or an agency taken off a panel counts from the next request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import CompoundSelect, Select, and_, bindparam, literal, null, or_, union_all
from sqlalchemy import select as select_columns
from sqlmodel import Session, col, select

from hub.services import subject_keys, subjects
from hub.services.consents import active_on_case
from hub.storage.models import (
    Agency,
    Case,
    Consent,
    Grant,
    Panel,
    PanelMembership,
    Subject,
    SubjectKey,
    SubjectLocalId,
)
from keys import KeyRing


@dataclass(frozen=True)
class CaseFacts:
    """What a disclosure reads of the case, its subject, its panel and the requester's agency."""

    id: str
    panel_id: str
    subject_id: str
    stage: str
    lead_agency: str | None
    designated_agencies: list[str]
    profile: str  # the panel's
    identity_ciphertext: str  # the subject's
    wrapped_key: str | None  # the subject's data key; None if it was shredded
    agency_kind: str | None  # the requester's agency; None if there is no such agency


# One round trip, as columns (no entities built). The requester's agency is not related to the
# case: joined on its id alone it adds at most one row's columns, never more rows.
_CASE_FACTS: Select[*tuple[Any, ...]] = (
    select_columns(
        col(Case.id),
        col(Case.panel_id),
        col(Case.subject_id),
        col(Case.stage),
        col(Case.lead_agency),
        col(Case.designated_agencies),
        col(Panel.profile),
        col(Subject.identity_ciphertext),
        col(SubjectKey.wrapped_key),
        col(Agency.kind).label("agency_kind"),
    )
    .join(Subject, col(Subject.id) == col(Case.subject_id))
    .join(Panel, col(Panel.id) == col(Case.panel_id))
    .outerjoin(SubjectKey, col(SubjectKey.subject_id) == col(Case.subject_id))
    .outerjoin(Agency, col(Agency.id) == bindparam("agency_id"))
    .where(col(Case.id) == bindparam("case_id"))
)


def read_case(session: Session, *, case_id: str, agency_id: str | None) -> CaseFacts | None:
    row = (
        session.connection()
        .execute(_CASE_FACTS, {"case_id": case_id, "agency_id": agency_id})
        .first()
    )
    if row is None:
        return None
    if row.wrapped_key is not None:
        # Read here rather than in a round trip of its own when the identity is opened.
        subject_keys.remember_wrapped(
            session=session, subject_id=row.subject_id, wrapped_key=row.wrapped_key
        )
    return CaseFacts(**row._asdict())


@dataclass(frozen=True)
class ConsentTerms:
    """What a decision weighs of one active consent."""

    id: str
    given_by: str
    explicit: bool
    recipients: list[str]
    purposes: list[str]
    categories: list[str]
    valid_from: datetime
    valid_until: datetime | None
    state: str


@dataclass(frozen=True)
class GrantTerms:
    """What a decision weighs of one active grant."""

    id: str
    agency_id: str
    purposes: list[str]
    categories: list[str]
    not_before: datetime
    expires_at: datetime
    state: str
    legal_basis: str


# The case's active consents and the requester's active grants in one round trip, as columns:
# n + m rows (a join would give n * m), shaped alike, with a column saying which is which.
_TERMS: CompoundSelect[*tuple[Any, ...]] = union_all(
    select_columns(
        literal("consent").label("kind"),
        col(Consent.id),
        col(Consent.state),
        col(Consent.purposes),
        col(Consent.categories),
        col(Consent.valid_from).label("starts"),
        col(Consent.valid_until).label("ends"),
        col(Consent.given_by).label("party"),
        col(Consent.explicit),
        col(Consent.recipients),
        null().label("legal_basis"),
    ).where(active_on_case(bindparam("case_id"))),
    select_columns(
        literal("grant"),
        col(Grant.id),
        col(Grant.state),
        col(Grant.purposes),
        col(Grant.categories),
        col(Grant.not_before),
        col(Grant.expires_at),
        col(Grant.agency_id),
        null(),
        null(),
        col(Grant.legal_basis),
    ).where(
        col(Grant.case_id) == bindparam("case_id"),
        col(Grant.agency_id) == bindparam("agency_id"),
        col(Grant.state) == "active",
    ),
)


def active_terms(
    session: Session, *, case_id: str, agency_id: str
) -> tuple[list[ConsentTerms], list[GrantTerms]]:
    """The case's active consents, and the agency's active grants on it."""
    consents: list[ConsentTerms] = []
    grants: list[GrantTerms] = []
    for row in session.connection().execute(_TERMS, {"case_id": case_id, "agency_id": agency_id}):
        if row.kind == "consent":
            consents.append(
                ConsentTerms(
                    id=row.id,
                    given_by=row.party,
                    explicit=row.explicit,
                    recipients=row.recipients,
                    purposes=row.purposes,
                    categories=row.categories,
                    valid_from=row.starts,
                    valid_until=row.ends,
                    state=row.state,
                )
            )
        else:
            grants.append(
                GrantTerms(
                    id=row.id,
                    agency_id=row.party,
                    purposes=row.purposes,
                    categories=row.categories,
                    not_before=row.starts,
                    expires_at=row.ends,
                    state=row.state,
                    legal_basis=row.legal_basis,
                )
            )
    return consents, grants


# The panel's member agencies (the holders to ask) and every agency with an identifier for the
# subject (all of which are scrubbed), in one round trip: rooted at the agency table, so an
# agency's row repeats only for a second identifier of the same subject.
_HOLDERS_AND_LOCAL_IDS = (
    select(
        Agency,
        col(PanelMembership.panel_id),
        col(SubjectLocalId.id),
        col(SubjectLocalId.local_id_ciphertext),
    )
    .outerjoin(
        PanelMembership,
        and_(
            col(PanelMembership.agency_id) == col(Agency.id),
            col(PanelMembership.panel_id) == bindparam("panel_id"),
        ),
    )
    .outerjoin(
        SubjectLocalId,
        and_(
            col(SubjectLocalId.agency_id) == col(Agency.id),
            col(SubjectLocalId.subject_id) == bindparam("subject_id"),
        ),
    )
    .where(or_(col(PanelMembership.panel_id).is_not(None), col(SubjectLocalId.id).is_not(None)))
    .order_by(col(Agency.id))
)


@dataclass(frozen=True)
class Holders:
    """The agencies to ask, and what the fetch sends and scrubs of the subject."""

    members: list[Agency]
    local_ids: dict[str, str]  # agency id -> its identifier for the subject (decrypted)
    secrets: frozenset[str]  # every identifier of the subject


def holders(session: Session, keyring: KeyRing, case: CaseFacts) -> Holders:
    """The case panel's member agencies, and every identifier any agency holds for the subject."""
    rows = session.execute(
        _HOLDERS_AND_LOCAL_IDS, {"panel_id": case.panel_id, "subject_id": case.subject_id}
    ).all()
    members: dict[str, Agency] = {}
    local: dict[str, str] = {}
    secrets: set[str] = set()
    for agency, member_of, link_id, ciphertext in rows:
        if member_of is not None:
            members[agency.id] = agency
        if link_id is not None:
            # Every identifier is opened (one key unwrap), not just those sent: the scrub
            # after the fetch redacts any agency's identifier that a source echoes back.
            local[agency.id] = subjects.open_local_id(
                session=session,
                keyring=keyring,
                subject_id=case.subject_id,
                link_id=link_id,
                local_id_ciphertext=ciphertext,
            )
            secrets.add(local[agency.id])
    return Holders(members=list(members.values()), local_ids=local, secrets=frozenset(secrets))
