"""Old pseudonyms after a pseudonym-root rotation: an agency asks for the current form.

Only the agency's own domain is searched, and only subjects of cases it can see (it referred
them, leads or assists): a pseudonym never resolves across domains. An old version resolves for
`pseudonym_grace_days` after the rotation that replaced it, then never again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, or_, select

from hub.errors import Forbidden, NotFound
from hub.services import subjects
from hub.services.principals import Principal
from hub.storage.models import Case
from keys import KeyRing


def current_form(
    *,
    session: Session,
    keyring: KeyRing,
    principal: Principal,
    pseudonym: str,
    grace: timedelta,
    now: datetime,
) -> dict[str, str]:
    """The current pseudonym, in the caller's domain, of the subject `pseudonym` names.

    Raises Forbidden for a caller that is not an agency, NotFound if the pseudonym names no
    subject the agency can see, or is of a version whose grace period has ended.
    """
    if principal.kind != "agency" or principal.agency_id is None:
        raise Forbidden("only an agency may resolve its own pseudonyms")
    agency = principal.agency_id
    version = pseudonym.split(".", 1)[0]
    if version != keyring.pseudonym_version and not _in_grace(keyring, grace=grace, now=now):
        raise NotFound("pseudonym not found")
    domain = subjects.agency_domain(agency)
    subject_ids = session.exec(
        select(Case.subject_id)
        .where(
            col(Case.panel_id).in_(principal.panels),
            or_(Case.referred_by == agency, Case.lead_agency == agency),
        )
        .distinct()
    ).all()
    designated = session.exec(select(Case).where(col(Case.panel_id).in_(principal.panels))).all()
    candidates = set(subject_ids) | {
        c.subject_id for c in designated if agency in (c.designated_agencies or [])
    }
    for subject_id in sorted(candidates):
        forms = keyring.pseudonyms(domain=domain, value=subject_id)
        if forms.get(version) == pseudonym:
            return {
                "pseudonym": forms[keyring.pseudonym_version],
                "version": keyring.pseudonym_version,
                "previous": pseudonym,
            }
    raise NotFound("pseudonym not found")


def _in_grace(keyring: KeyRing, *, grace: timedelta, now: datetime) -> bool:
    current = next(
        k for k in keyring.key_ids() if k["purpose"] == "pseudonym-root" and k["state"] == "current"
    )
    rotated_at = datetime.fromisoformat(current["created_at"].replace("Z", "+00:00"))
    return now < rotated_at + grace
