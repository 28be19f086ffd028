"""Old pseudonyms after a pseudonym-root rotation: an agency asks for the current form.

Only the agency's own domain is searched, and only subjects of cases it can see (it referred
them, leads or assists): a pseudonym never resolves across domains. An old version resolves for
`pseudonym_grace_days` after the rotation that replaced it, then never again, and never once
retired (`hub keys retire pseudonym-root vN`). Every lookup is audited.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlmodel import Session, col, or_, select

from hub.errors import NotFound
from hub.services import audit, key_retirement, subjects
from hub.services.principals import Principal
from hub.storage.models import Case
from keys import KeyRing

AUDIT_KIND = "pseudonym_current_form"
_VERSION = re.compile(r"v[0-9]{1,6}")


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

    Every lookup by an agency, answered or not, is written to the audit log (references only:
    the caller, the versions, and the subject as the audit domain's pseudonym when one was
    found) and committed before the answer. Raises NotFound for a caller that is not an agency
    (it has no pseudonym domain), or if the pseudonym names no subject the agency can see, is
    of a retired version, or of a version whose grace period has ended; AuditUnavailable if
    the entry cannot be made durable.
    """
    if principal.kind != "agency" or principal.agency_id is None:
        # A person has no pseudonym domain, so no pseudonym of theirs exists to resolve.
        raise NotFound("pseudonym not found")
    version = pseudonym.split(".", 1)[0]
    subject_id = _resolve(
        session=session,
        keyring=keyring,
        principal=principal,
        pseudonym=pseudonym,
        version=version,
        grace=grace,
        now=now,
    )
    body: dict[str, str] = {
        "actor": principal.actor,
        "agency": principal.agency_id,
        # The version only if it is one; the pseudonym itself is never logged.
        "from_version": version if _VERSION.fullmatch(version) else "invalid",
        "to_version": keyring.pseudonym_version,
        "outcome": "not_found" if subject_id is None else "resolved",
    }
    if subject_id is not None:
        body["subject"] = subjects.audit_ref(keyring, subject_id=subject_id)
    audit.append(session=session, kind=AUDIT_KIND, body=body, now=now)
    audit.commit(session=session)
    if subject_id is None:
        raise NotFound("pseudonym not found")
    domain = subjects.agency_domain(principal.agency_id)
    return {
        "pseudonym": keyring.pseudonym(domain=domain, value=subject_id),
        "version": keyring.pseudonym_version,
        "previous": pseudonym,
    }


def _resolve(
    *,
    session: Session,
    keyring: KeyRing,
    principal: Principal,
    pseudonym: str,
    version: str,
    grace: timedelta,
    now: datetime,
) -> str | None:
    agency = principal.agency_id
    assert agency is not None
    if version != keyring.pseudonym_version and not _in_grace(
        keyring, version=version, grace=grace, now=now
    ):
        return None
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
        # Only versions held and not retired: a retired version resolves nothing.
        if keyring.pseudonyms(domain=domain, value=subject_id).get(version) == pseudonym:
            return subject_id
    return None


def _in_grace(keyring: KeyRing, *, version: str, grace: timedelta, now: datetime) -> bool:
    # The grace period runs from when `version` stopped writing: when its successor was made.
    replaced_at = key_retirement.successor_created_at(
        keyring, purpose="pseudonym-root", version=version
    )
    return replaced_at is not None and now < replaced_at + grace
