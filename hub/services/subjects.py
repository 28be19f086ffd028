"""Subjects: identity kept encrypted, found by blind index, shown only as pseudonyms."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import object_session
from sqlmodel import Session, col, delete, select

from hub.matching import normalise_name
from hub.services import subject_keys
from hub.storage.models import (
    Case,
    PossibleMatch,
    Subject,
    SubjectFieldIndex,
    SubjectKey,
    SubjectLocalId,
)
from keys import KeyRing

AUDIT_DOMAIN = "audit"
# The version of hub.matching's normalisation the blind indexes are made with; bump it when the
# normaliser changes, and `hub keys reindex` re-indexes every subject made under an older one.
NORMALISER_VERSION = "n2"
# The blind-index key version of subjects indexed before versions were recorded (NULL): the
# first, and until `hub keys rotate blind-index` existed the only one.
FIRST_BLIND_INDEX_VERSION = "v1"


@dataclass(frozen=True)
class Identity:
    given_name: str
    family_name: str
    date_of_birth: date

    def normalised(self) -> str:
        """The matching form (hub.matching) of name and date of birth, for the blind index."""
        return (
            f"{NORMALISER_VERSION}|{normalise_name(self.given_name)}|"
            f"{normalise_name(self.family_name)}|{self.date_of_birth.isoformat()}"
        )

    def legacy_normalised(self) -> str:
        """The form indexed before hub.matching existed, so older subjects are still found."""

        def norm(text: str) -> str:
            return " ".join(unicodedata.normalize("NFKC", text).casefold().split())

        return f"{norm(self.given_name)}|{norm(self.family_name)}|{self.date_of_birth.isoformat()}"

    def _field_values(self) -> dict[str, tuple[str, str]]:
        """Each field's blind-index kind and matching form."""
        return {
            "given_name": ("given-name", normalise_name(self.given_name)),
            "family_name": ("family-name", normalise_name(self.family_name)),
            "date_of_birth": ("date-of-birth", self.date_of_birth.isoformat()),
        }

    def field_indexes(self, keyring: KeyRing, *, version: str | None = None) -> dict[str, str]:
        """Blind indexes of each field alone, to find near matches, under the blind-index key
        `version` (default: the current one)."""
        return {
            name: keyring.blind_index(kind=kind, value=value, version=version)
            for name, (kind, value) in self._field_values().items()
        }

    def field_indexes_any_version(self, keyring: KeyRing) -> dict[str, list[str]]:
        """Each field's blind indexes under every blind-index key held: during a rotation a
        subject's fields are indexed under the old key or the new one."""
        return {
            name: list(keyring.blind_indexes(kind=kind, value=value).values())
            for name, (kind, value) in self._field_values().items()
        }

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


def _local_index(
    keyring: KeyRing, *, agency_id: str, local_id: str, version: str | None = None
) -> str:
    return keyring.blind_index(kind="local-id", value=f"{agency_id}|{local_id}", version=version)


def _local_indexes(keyring: KeyRing, *, agency_id: str, local_id: str) -> list[str]:
    """The local identifier's index under every blind-index key held (see `find_by_identity`)."""
    return list(keyring.blind_indexes(kind="local-id", value=f"{agency_id}|{local_id}").values())


def identity_of(keyring: KeyRing, subject: Subject) -> Identity:
    """The subject's identity, decrypted under its data key.

    Raises SubjectErased if the subject was crypto-shredded, keys.DecryptionError if the
    stored value does not open (altered, or moved from another row).
    """
    session = object_session(subject)
    if not isinstance(session, Session):
        raise ValueError("subject is not attached to a session")
    return identity_from(
        session=session,
        keyring=keyring,
        subject_id=subject.id,
        identity_ciphertext=subject.identity_ciphertext,
    )


def identity_from(
    *, session: Session, keyring: KeyRing, subject_id: str, identity_ciphertext: str
) -> Identity:
    """The identity sealed in `identity_ciphertext` (the subject row's column, read by the
    caller); raises as `identity_of` does."""
    data = json.loads(
        subject_keys.open_value(
            session=session,
            keyring=keyring,
            subject_id=subject_id,
            table="subject",
            row=subject_id,
            column="identity_ciphertext",
            token=identity_ciphertext,
        )
    )
    return Identity(
        given_name=data["given_name"],
        family_name=data["family_name"],
        date_of_birth=date.fromisoformat(data["date_of_birth"]),
    )


def find_by_local_id(
    *, session: Session, keyring: KeyRing, agency_id: str, local_id: str
) -> Subject | None:
    indexes = _local_indexes(keyring, agency_id=agency_id, local_id=local_id)
    link = session.exec(
        select(SubjectLocalId).where(
            SubjectLocalId.agency_id == agency_id, col(SubjectLocalId.local_id_index).in_(indexes)
        )
    ).first()
    return None if link is None else session.get(Subject, link.subject_id)


def find_by_identity(*, session: Session, keyring: KeyRing, identity: Identity) -> Subject | None:
    """The subject whose blind index matches `identity` as normalised now, or as normalised
    before hub.matching existed (subjects not yet re-indexed by `hub keys reindex`), under the
    current blind-index key or an older one still held (subjects not yet re-indexed by
    `hub keys rotate blind-index`)."""
    indexes = [
        *keyring.blind_indexes(kind="identity", value=identity.normalised()).values(),
        *keyring.blind_indexes(kind="identity", value=identity.legacy_normalised()).values(),
    ]
    return session.exec(select(Subject).where(col(Subject.identity_index).in_(indexes))).first()


def put_field_indexes(
    *,
    session: Session,
    keyring: KeyRing,
    subject: Subject,
    identity: Identity,
    version: str | None = None,
) -> None:
    """Write (or rewrite) the subject's single-field blind indexes, for near matches, under the
    blind-index key `version` (default: the current one)."""
    fields = identity.field_indexes(keyring, version=version)
    row = session.get(SubjectFieldIndex, subject.id) or SubjectFieldIndex(
        subject_id=subject.id, given_name_index="", family_name_index="", date_of_birth_index=""
    )
    row.given_name_index = fields["given_name"]
    row.family_name_index = fields["family_name"]
    row.date_of_birth_index = fields["date_of_birth"]
    session.add(row)


def reindex(
    *, session: Session, keyring: KeyRing, subject: Subject, version: str | None = None
) -> None:
    """Recompute the subject's blind indexes (identity, single fields, local identifiers) with
    the current normaliser under the blind-index key `version` (default: the current one), and
    mark it with both versions.

    A crypto-shredded subject has nothing to index; it is only marked. Raises
    keys.DecryptionError if its identity or a local identifier does not open (an altered row).
    """
    if version is None:
        version = keyring.blind_index_version  # Read once: every index under the same key.
    if subject.identity_ciphertext != subject_keys.SHREDDED:
        identity = identity_of(keyring, subject)
        subject.identity_index = keyring.blind_index(
            kind="identity", value=identity.normalised(), version=version
        )
        put_field_indexes(
            session=session, keyring=keyring, subject=subject, identity=identity, version=version
        )
        for link in session.exec(
            select(SubjectLocalId).where(
                SubjectLocalId.subject_id == subject.id,
                SubjectLocalId.local_id_ciphertext != subject_keys.SHREDDED,
            )
        ).all():
            local_id = subject_keys.open_value(
                session=session,
                keyring=keyring,
                subject_id=subject.id,
                table="subject_local_id",
                row=link.id,
                column="local_id_ciphertext",
                token=link.local_id_ciphertext,
            ).decode()
            link.local_id_index = _local_index(
                keyring, agency_id=link.agency_id, local_id=local_id, version=version
            )
            session.add(link)
    subject.index_version = NORMALISER_VERSION
    subject.blind_index_version = version
    session.add(subject)


def find_or_create(
    *, session: Session, keyring: KeyRing, identity: Identity, agency_id: str, local_id: str | None
) -> Subject:
    """The subject this agency's identifier or this identity already names, or a new one."""
    subject = None
    if local_id is not None:
        subject = find_by_local_id(
            session=session, keyring=keyring, agency_id=agency_id, local_id=local_id
        )
    if subject is None:
        subject = find_by_identity(session=session, keyring=keyring, identity=identity)
    if subject is None:
        version = keyring.blind_index_version
        subject = Subject(
            identity_ciphertext="",
            identity_index=keyring.blind_index(
                kind="identity", value=identity.normalised(), version=version
            ),
            index_version=NORMALISER_VERSION,
            blind_index_version=version,
        )
        session.add(subject)
        session.flush()
        put_field_indexes(
            session=session, keyring=keyring, subject=subject, identity=identity, version=version
        )
        plaintext = json.dumps(
            {
                "given_name": identity.given_name,
                "family_name": identity.family_name,
                "date_of_birth": identity.date_of_birth.isoformat(),
            }
        ).encode()
        subject.identity_ciphertext = subject_keys.seal(
            session=session,
            keyring=keyring,
            subject_id=subject.id,
            table="subject",
            row=subject.id,
            column="identity_ciphertext",
            plaintext=plaintext,
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
    """Record this agency's identifier for the subject, once (whichever blind-index key held
    indexed it), under the current key."""
    existing = session.exec(
        select(SubjectLocalId).where(
            SubjectLocalId.agency_id == agency_id,
            col(SubjectLocalId.local_id_index).in_(
                _local_indexes(keyring, agency_id=agency_id, local_id=local_id)
            ),
        )
    ).first()
    if existing is not None:
        return
    index = _local_index(keyring, agency_id=agency_id, local_id=local_id)
    link = SubjectLocalId(
        subject_id=subject.id, agency_id=agency_id, local_id_ciphertext="", local_id_index=index
    )
    link.local_id_ciphertext = subject_keys.seal(
        session=session,
        keyring=keyring,
        subject_id=subject.id,
        table="subject_local_id",
        row=link.id,
        column="local_id_ciphertext",
        plaintext=local_id.encode(),
    )
    session.add(link)
    session.flush()


def local_ids(*, session: Session, keyring: KeyRing, subject_id: str) -> dict[str, str]:
    """Each agency's own identifier for the subject (decrypted; never leaves the hub)."""
    links = session.exec(
        select(SubjectLocalId).where(SubjectLocalId.subject_id == subject_id)
    ).all()
    return {
        link.agency_id: open_local_id(
            session=session,
            keyring=keyring,
            subject_id=subject_id,
            link_id=link.id,
            local_id_ciphertext=link.local_id_ciphertext,
        )
        for link in links
    }


def open_local_id(
    *, session: Session, keyring: KeyRing, subject_id: str, link_id: str, local_id_ciphertext: str
) -> str:
    """One agency's identifier for the subject, from its `subject_local_id` row's id and
    ciphertext (read by the caller). Raises as `subject_keys.open_value` does."""
    return subject_keys.open_value(
        session=session,
        keyring=keyring,
        subject_id=subject_id,
        table="subject_local_id",
        row=link_id,
        column="local_id_ciphertext",
        token=local_id_ciphertext,
    ).decode()


def record_possible_matches(
    *, session: Session, keyring: KeyRing, case: Case, identity: Identity
) -> list[PossibleMatch]:
    """Record, for the coordinator to confirm, every other subject whose identity differs
    from `identity` in exactly one field (given name, family name or date of birth).

    Nothing is merged: the case stays with its own subject until a coordinator decides.
    A subject's field indexes are all under one blind-index key, and indexes under different
    keys never coincide, so matching against each field's indexes under every key held finds
    subjects re-indexed by a rotation and those not yet re-indexed alike.
    """
    fields = identity.field_indexes_any_version(keyring)
    columns = {
        "given_name": SubjectFieldIndex.given_name_index,
        "family_name": SubjectFieldIndex.family_name_index,
        "date_of_birth": SubjectFieldIndex.date_of_birth_index,
    }
    found: list[PossibleMatch] = []
    for differing in columns:
        same = [col(columns[name]).in_(fields[name]) for name in columns if name != differing]
        rows = session.exec(
            select(SubjectFieldIndex).where(
                *same,
                col(columns[differing]).not_in(fields[differing]),
                col(SubjectFieldIndex.subject_id) != case.subject_id,
            )
        ).all()
        for row in rows:
            match = PossibleMatch(
                case_id=case.id, candidate_subject_id=row.subject_id, differing_field=differing
            )
            session.add(match)
            found.append(match)
    if found:
        session.flush()
    return found


def shred(*, session: Session, keyring: KeyRing, subject_id: str) -> None:
    """Crypto-shred the subject: destroy its data key, so its identity, local identifiers and
    case free text can never be decrypted again, from this database or any copy of it.

    Values still sealed under the keyring rather than the subject's key (written before
    per-subject keys existed) are overwritten, and the blind indexes are replaced by random
    values so new referrals never link to the erased subject. Pseudonyms and the audit log are
    kept: they name nobody without the identity. Idempotent. Raises nothing for an unknown id.
    """
    del keyring  # The keyring is not needed to destroy; it is taken for a uniform signature.
    subject = session.get(Subject, subject_id)
    if subject is None:
        return
    session.exec(delete(SubjectKey).where(col(SubjectKey.subject_id) == subject_id))
    subject.identity_ciphertext = subject_keys.SHREDDED
    subject.identity_index = f"shredded:{subject.id}"
    session.add(subject)
    session.exec(delete(SubjectFieldIndex).where(col(SubjectFieldIndex.subject_id) == subject_id))
    for link in session.exec(
        select(SubjectLocalId).where(SubjectLocalId.subject_id == subject_id)
    ).all():
        link.local_id_ciphertext = subject_keys.SHREDDED
        link.local_id_index = f"shredded:{link.id}"
        session.add(link)
    for case in session.exec(select(Case).where(Case.subject_id == subject_id)).all():
        if case.summary_ciphertext is not None:
            case.summary_ciphertext = subject_keys.SHREDDED
            session.add(case)
    session.flush()


def case_summary(*, session: Session, keyring: KeyRing, case: Case) -> str | None:
    """The case's free-text summary, decrypted under its subject's data key, if it has one.

    Raises SubjectErased if the subject was shredded.
    """
    if case.summary_ciphertext is None:
        return None
    return subject_keys.open_value(
        session=session,
        keyring=keyring,
        subject_id=case.subject_id,
        table="case",
        row=case.id,
        column="summary_ciphertext",
        token=case.summary_ciphertext,
    ).decode()


def seal_case_summary(*, session: Session, keyring: KeyRing, case: Case, summary: str) -> None:
    """Store the case's free-text summary under its subject's data key."""
    case.summary_ciphertext = subject_keys.seal(
        session=session,
        keyring=keyring,
        subject_id=case.subject_id,
        table="case",
        row=case.id,
        column="summary_ciphertext",
        plaintext=summary.encode(),
    )
