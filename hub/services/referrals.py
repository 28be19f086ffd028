"""Referral intake: one concern about one person becomes a case in stage `referred`."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from hub.errors import Forbidden, NotFound
from hub.schemas import ReferralCreate
from hub.services import audit, subjects
from hub.services.principals import Principal
from hub.storage.models import Case, Panel
from hub.vocabulary import REFUSED_GROUNDS
from keys import KeyRing

OPEN_STAGES = ("referred", "screening", "assessment", "intervention")


class RefusedGround(ValueError):
    """A referral named a protected characteristic as a ground; the API answers 422."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field}: protected characteristics are never grounds for a referral")
        self.field = field


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
    for code in referral.indicators:
        if code in REFUSED_GROUNDS:
            raise RefusedGround("indicators")
    if principal.kind != "agency" or principal.agency_id is None:
        raise Forbidden("referrals are made by agency systems")
    if session.get(Panel, referral.panel) is None or referral.panel not in principal.panels:
        raise NotFound("panel not found")
    identity = subjects.Identity(
        given_name=referral.subject.given_name,
        family_name=referral.subject.family_name,
        date_of_birth=referral.subject.date_of_birth,
    )
    subject = subjects.find_or_create(
        session=session,
        keyring=keyring,
        identity=identity,
        agency_id=principal.agency_id,
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
        audit.append(
            session=session,
            kind="referral_linked",
            body={
                "actor": principal.actor,
                "case": open_case.id,
                "subject": subjects.audit_ref(keyring, subject_id=subject.id),
                "channel": referral.channel,
                "indicators": referral.indicators,
            },
            now=now,
        )
        audit.commit(session=session)
        return open_case, False
    case = Case(
        panel_id=referral.panel,
        subject_id=subject.id,
        stage="referred",
        referred_by=principal.agency_id,
        channel=referral.channel,
        indicators=referral.indicators,
        created_at=now,
        updated_at=now,
    )
    if referral.summary:
        case.summary_ciphertext = keyring.encrypt(
            referral.summary.encode(), associated_data=f"case/{case.id}/summary".encode()
        )
    session.add(case)
    session.flush()
    audit.append(
        session=session,
        kind="referral",
        body={
            "actor": principal.actor,
            "case": case.id,
            "subject": subjects.audit_ref(keyring, subject_id=subject.id),
            "channel": referral.channel,
            "indicators": referral.indicators,
        },
        now=now,
    )
    audit.commit(session=session)
    return case, True
