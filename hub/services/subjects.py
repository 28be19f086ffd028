"""Subjects: identity kept encrypted, found by blind index, shown only as pseudonyms."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from datetime import date

from sqlmodel import Session, select

from hub.storage.models import Subject, SubjectLocalId
from keys import KeyRing

AUDIT_DOMAIN = "audit"


@dataclass(frozen=True)
class Identity:
    given_name: str
    family_name: str
    date_of_birth: date

    def normalised(self) -> str:
        def norm(text: str) -> str:
            return " ".join(unicodedata.normalize("NFKC", text).casefold().split())

        return f"{norm(self.given_name)}|{norm(self.family_name)}|{self.date_of_birth.isoformat()}"

    def age_on(self, day: date) -> int:
        dob = self.date_of_birth
        return day.year - dob.year - ((day.month, day.day) < (dob.month, dob.day))


def agency_domain(agency_id: str) -> str:
    return f"agency:{agency_id}"


def panel_domain(panel_id: str) -> str:
    return f"panel:{panel_id}"


def pseudonym_for(keyring: KeyRing, *, domain: str, subject_id: str) -> str:
    return keyring.pseudonym(domain=domain, value=subject_id)


def audit_ref(keyring: KeyRing, *, subject_id: str) -> str:
    """The subject as the audit log names it: a pseudonym of the audit domain only."""
    return keyring.pseudonym(domain=AUDIT_DOMAIN, value=subject_id)


def _identity_ad(subject_id: str) -> bytes:
    return f"subject/{subject_id}/identity".encode()


def _local_id_ad(row_id: str) -> bytes:
    return f"subject_local_id/{row_id}/local_id".encode()


def _local_index(keyring: KeyRing, *, agency_id: str, local_id: str) -> str:
    return keyring.blind_index(kind="local-id", value=f"{agency_id}|{local_id}")


def identity_of(keyring: KeyRing, subject: Subject) -> Identity:
    data = json.loads(
        keyring.decrypt(subject.identity_ciphertext, associated_data=_identity_ad(subject.id))
    )
    return Identity(
        given_name=data["given_name"],
        family_name=data["family_name"],
        date_of_birth=date.fromisoformat(data["date_of_birth"]),
    )


def find_by_local_id(
    *, session: Session, keyring: KeyRing, agency_id: str, local_id: str
) -> Subject | None:
    index = _local_index(keyring, agency_id=agency_id, local_id=local_id)
    link = session.exec(
        select(SubjectLocalId).where(
            SubjectLocalId.agency_id == agency_id, SubjectLocalId.local_id_index == index
        )
    ).first()
    return None if link is None else session.get(Subject, link.subject_id)


def find_or_create(
    *, session: Session, keyring: KeyRing, identity: Identity, agency_id: str, local_id: str | None
) -> Subject:
    """The subject this agency's identifier or this identity already names, or a new one."""
    subject = None
    if local_id is not None:
        subject = find_by_local_id(
            session=session, keyring=keyring, agency_id=agency_id, local_id=local_id
        )
    index = keyring.blind_index(kind="identity", value=identity.normalised())
    if subject is None:
        subject = session.exec(select(Subject).where(Subject.identity_index == index)).first()
    if subject is None:
        subject = Subject(identity_ciphertext="", identity_index=index)
        plaintext = json.dumps(
            {
                "given_name": identity.given_name,
                "family_name": identity.family_name,
                "date_of_birth": identity.date_of_birth.isoformat(),
            }
        ).encode()
        subject.identity_ciphertext = keyring.encrypt(
            plaintext, associated_data=_identity_ad(subject.id)
        )
        session.add(subject)
        session.flush()
    if local_id is not None:
        link_local_id(
            session=session,
            keyring=keyring,
            subject=subject,
            agency_id=agency_id,
            local_id=local_id,
        )
    return subject


def link_local_id(
    *, session: Session, keyring: KeyRing, subject: Subject, agency_id: str, local_id: str
) -> None:
    """Record this agency's identifier for the subject, once."""
    index = _local_index(keyring, agency_id=agency_id, local_id=local_id)
    existing = session.exec(
        select(SubjectLocalId).where(
            SubjectLocalId.agency_id == agency_id, SubjectLocalId.local_id_index == index
        )
    ).first()
    if existing is not None:
        return
    link = SubjectLocalId(
        subject_id=subject.id, agency_id=agency_id, local_id_ciphertext="", local_id_index=index
    )
    link.local_id_ciphertext = keyring.encrypt(
        local_id.encode(), associated_data=_local_id_ad(link.id)
    )
    session.add(link)
    session.flush()


def local_ids(*, session: Session, keyring: KeyRing, subject_id: str) -> dict[str, str]:
    """Each agency's own identifier for the subject (decrypted; never leaves the hub)."""
    links = session.exec(
        select(SubjectLocalId).where(SubjectLocalId.subject_id == subject_id)
    ).all()
    return {
        link.agency_id: keyring.decrypt(
            link.local_id_ciphertext, associated_data=_local_id_ad(link.id)
        ).decode()
        for link in links
    }
