"""Referral intake: one concern about one person becomes a case in stage `referred`."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from hub.errors import BadRequest, Forbidden, NotFound
from hub.schemas import ReferralCreate
from hub.services import audit, profiles, subjects
from hub.services.case_audit import case_event
from hub.services.cases import panel_agencies
from hub.services.principals import COORDINATOR, Principal
from hub.storage.models import Case, Panel
from hub.vocabulary import REFUSED_GROUNDS
from keys import KeyRing

OPEN_STAGES = ("referred", "screening", "assessment", "intervention")


class RefusedGround(ValueError):
    """A referral named a protected characteristic as a ground; the API answers 422."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field}: protected characteristics are never grounds for a referral")
        self.field = field


def _check_vocabulary(codes: list[str], vocabulary: frozenset[str], *, field: str) -> None:
    """Raises BadRequest (422) naming the field if a code is not in the profile's vocabulary."""
    unknown = sorted(set(codes) - vocabulary)
    if unknown:
        raise BadRequest(
            f"{field} names codes outside the panel's vocabulary",
            details={"field": field, "unknown": unknown},
        )


def _referring_agency(*, session: Session, principal: Principal, referral: ReferralCreate) -> str:
    """The agency the referral is recorded under.

    An agency system refers under its own name. A coordinator of the panel enters referrals
    that came in by another channel (the helpline, the web form, a self-referral, a family
    member or peer, signposting) under `received_by`, the member agency that received it.
    Raises Forbidden or BadRequest (naming the field).
    """
    if principal.kind == "agency" and principal.agency_id is not None:
        if referral.received_by not in (None, principal.agency_id):
            raise BadRequest(
                "an agency system refers under its own name", details={"field": "received_by"}
            )
        return principal.agency_id
    if not (principal.has_role(COORDINATOR) and principal.panel_id == referral.panel):
        raise Forbidden("referrals are made by agency systems or the panel's coordinator")
    if referral.channel == "agency":
        raise BadRequest(
            "a coordinator enters referrals from other channels; agencies refer over the API",
            details={"field": "channel"},
        )
    if referral.received_by is None or referral.received_by not in panel_agencies(
        session=session, panel_id=referral.panel
    ):
        raise BadRequest(
            "received_by must name the member agency that received the referral",
            details={"field": "received_by"},
        )
    if referral.subject.local_id is not None:
        raise BadRequest(
            "a local id is an agency system's own identifier; leave it out",
            details={"field": "subject.local_id"},
        )
    return referral.received_by


def create_referral(
    *,
    session: Session,
    keyring: KeyRing,
    principal: Principal,
    referral: ReferralCreate,
    now: datetime,
) -> tuple[Case, bool]:
    """Open a case, or return the open case this person already has in the panel.

    Returns (case, created). Raises Forbidden if the caller is not an agency of the panel,
    NotFound for an unknown panel, RefusedGround for a protected characteristic.
    """
    for field, codes in (
        ("indicators", referral.indicators),
        ("protective_factors", referral.protective_factors),
    ):
        if any(code in REFUSED_GROUNDS for code in codes):
            raise RefusedGround(field)
    panel = session.get(Panel, referral.panel)
    if panel is None or referral.panel not in principal.panels:
        raise NotFound("panel not found")
    referrer = _referring_agency(session=session, principal=principal, referral=referral)
    _check_vocabulary(referral.indicators, profiles.indicators(panel.profile), field="indicators")
    _check_vocabulary(
        referral.protective_factors,
        profiles.protective_factors(panel.profile),
        field="protective_factors",
    )
    identity = subjects.Identity(
        given_name=referral.subject.given_name,
        family_name=referral.subject.family_name,
        date_of_birth=referral.subject.date_of_birth,
    )
    subject = subjects.find_or_create(
        session=session,
        keyring=keyring,
        identity=identity,
        agency_id=referrer,
        local_id=referral.subject.local_id,
    )
    open_case = session.exec(
        select(Case).where(
            Case.panel_id == referral.panel,
            Case.subject_id == subject.id,
            Case.stage.in_(OPEN_STAGES),  # type: ignore[attr-defined]
        )
    ).first()
    if open_case is not None:
        case_event(
            session=session,
            keyring=keyring,
            actor=principal.actor,
            case=open_case,
            kind="referral_linked",
            now=now,
            details={"channel": referral.channel, "indicators": referral.indicators},
        )
        audit.commit(session=session)
        return open_case, False
    case = Case(
        panel_id=referral.panel,
        subject_id=subject.id,
        stage="referred",
        referred_by=referrer,
        entered_by=principal.actor,
        channel=referral.channel,
        indicators=referral.indicators,
        protective_factors=referral.protective_factors,
        created_at=now,
        updated_at=now,
    )
    if referral.summary:
        subjects.seal_case_summary(
            session=session, keyring=keyring, case=case, summary=referral.summary
        )
    session.add(case)
    session.flush()
    # A person who differs from a known subject in one field is offered to the coordinator
    # as a possible match, never merged silently.
    subjects.record_possible_matches(session=session, keyring=keyring, case=case, identity=identity)
    case_event(
        session=session,
        keyring=keyring,
        actor=principal.actor,
        case=case,
        kind="referral",
        now=now,
        details={"channel": referral.channel, "indicators": referral.indicators},
    )
    audit.commit(session=session)
    return case, True
