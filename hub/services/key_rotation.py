"""Rotation of the data-encryption key (the key-encryption key) without loss.

`hub keys rotate data-encryption` adds a new key to the keystore (it writes from then on; the
old one still reads) and then runs `run_data_key_rotation`, which, in batches of one
transaction each:

1. re-wraps every subject data key still wrapped under an older key-encryption key;
2. re-seals under the subject's own key every identity, local identifier and case summary still
   sealed directly under the keyring (values written before per-subject keys existed);
3. re-encrypts under the current key every other keyring-sealed value under an older key
   (consent change reasons, webhook secrets).

Each batch commits with the progress in `key_rotation`, and every step selects only what is
still left to do, so a run that is interrupted (a crash, Ctrl-C) continues where it stopped
when started again, and the hub keeps serving throughout: every old key still reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from hub.services import subject_keys
from hub.services.notifications import secret_associated_data
from hub.storage.models import (
    AgencyWebhook,
    Case,
    ConsentChange,
    KeyRotation,
    Subject,
    SubjectKey,
    SubjectLocalId,
)
from keys import KeyRing

DATA_ENCRYPTION = "data-encryption"
_LEGACY = "v1.%"


@dataclass(frozen=True)
class RotationResult:
    rotation_id: str
    target_kid: str
    processed: int
    batches: int
    finished: bool
    resumed: bool


def running(*, session: Session, purpose: str = DATA_ENCRYPTION) -> KeyRotation | None:
    """The unfinished rotation of `purpose`, if a run was interrupted."""
    return session.exec(
        select(KeyRotation)
        .where(KeyRotation.purpose == purpose, KeyRotation.status == "running")
        .order_by(col(KeyRotation.started_at).desc())
    ).first()


def _legacy_under_old_key(token: str | None, current: str) -> bool:
    return token is not None and KeyRing.token_kid(token) not in (None, current)


def _batch(session: Session, keyring: KeyRing, size: int) -> int:
    """Do up to `size` items of the first step with work left; returns how many were done."""
    current = keyring.data_key_kid
    key_rows = session.exec(
        select(SubjectKey)
        .where(SubjectKey.kek_kid != current)
        .order_by(col(SubjectKey.subject_id))
        .limit(size)
    ).all()
    for key_row in key_rows:
        subject_keys.rewrap(keyring=keyring, row=key_row)
        session.add(key_row)
    if key_rows:
        return len(key_rows)
    subject_rows = session.exec(
        select(Subject)
        .where(col(Subject.identity_ciphertext).like(_LEGACY))
        .order_by(col(Subject.id))
        .limit(size)
    ).all()
    for subject in subject_rows:
        subject.identity_ciphertext = _reseal(
            session,
            keyring,
            subject.id,
            "subject",
            subject.id,
            "identity_ciphertext",
            subject.identity_ciphertext,
        )
        session.add(subject)
    if subject_rows:
        return len(subject_rows)
    links = session.exec(
        select(SubjectLocalId)
        .where(col(SubjectLocalId.local_id_ciphertext).like(_LEGACY))
        .order_by(col(SubjectLocalId.id))
        .limit(size)
    ).all()
    for link in links:
        link.local_id_ciphertext = _reseal(
            session,
            keyring,
            link.subject_id,
            "subject_local_id",
            link.id,
            "local_id_ciphertext",
            link.local_id_ciphertext,
        )
        session.add(link)
    if links:
        return len(links)
    cases = session.exec(
        select(Case)
        .where(col(Case.summary_ciphertext).like(_LEGACY))
        .order_by(col(Case.id))
        .limit(size)
    ).all()
    for case in cases:
        assert case.summary_ciphertext is not None
        case.summary_ciphertext = _reseal(
            session,
            keyring,
            case.subject_id,
            "case",
            case.id,
            "summary_ciphertext",
            case.summary_ciphertext,
        )
        session.add(case)
    if cases:
        return len(cases)
    return _reencrypt_keyring_values(session, keyring, size)


def _reencrypt_keyring_values(session: Session, keyring: KeyRing, size: int) -> int:
    current = keyring.data_key_kid
    stale = f"v1.{current}.%"
    changes = session.exec(
        select(ConsentChange)
        .where(
            col(ConsentChange.reason_ciphertext).like(_LEGACY),
            col(ConsentChange.reason_ciphertext).not_like(stale),
        )
        .order_by(col(ConsentChange.id))
        .limit(size)
    ).all()
    for change in changes:
        assert _legacy_under_old_key(change.reason_ciphertext, current)
        ad = f"consent_change/{change.id}/reason".encode()
        assert change.reason_ciphertext is not None
        plain = keyring.decrypt(change.reason_ciphertext, associated_data=ad)
        change.reason_ciphertext = keyring.encrypt(plain, associated_data=ad)
        session.add(change)
    if changes:
        return len(changes)
    hooks = session.exec(
        select(AgencyWebhook)
        .where(col(AgencyWebhook.secret_ciphertext).not_like(stale))
        .order_by(col(AgencyWebhook.agency_id))
        .limit(size)
    ).all()
    for hook in hooks:
        ad = secret_associated_data(hook.agency_id)
        plain = keyring.decrypt(hook.secret_ciphertext, associated_data=ad)
        hook.secret_ciphertext = keyring.encrypt(plain, associated_data=ad)
        session.add(hook)
    return len(hooks)


def _reseal(
    session: Session,
    keyring: KeyRing,
    subject_id: str,
    table: str,
    row: str,
    column: str,
    token: str,
) -> str:
    common: dict[str, Any] = {
        "session": session,
        "keyring": keyring,
        "subject_id": subject_id,
        "table": table,
        "row": row,
        "column": column,
    }
    plain = subject_keys.open_value(token=token, **common)
    return subject_keys.seal(plaintext=plain, **common)


def remaining(*, session: Session, keyring: KeyRing) -> int:
    """How many items a data-encryption rotation still has to do (for a progress bar)."""
    current = keyring.data_key_kid
    stale = f"v1.{current}.%"
    counts = [
        select(func.count()).select_from(SubjectKey).where(SubjectKey.kek_kid != current),
        select(func.count())
        .select_from(Subject)
        .where(col(Subject.identity_ciphertext).like(_LEGACY)),
        select(func.count())
        .select_from(SubjectLocalId)
        .where(col(SubjectLocalId.local_id_ciphertext).like(_LEGACY)),
        select(func.count()).select_from(Case).where(col(Case.summary_ciphertext).like(_LEGACY)),
        select(func.count())
        .select_from(ConsentChange)
        .where(
            col(ConsentChange.reason_ciphertext).like(_LEGACY),
            col(ConsentChange.reason_ciphertext).not_like(stale),
        ),
        select(func.count())
        .select_from(AgencyWebhook)
        .where(col(AgencyWebhook.secret_ciphertext).not_like(stale)),
    ]
    return sum(int(session.exec(query).one()) for query in counts)


def run_data_key_rotation(
    *,
    engine: Engine,
    keyring: KeyRing,
    now: Callable[[], datetime],
    batch_size: int = 200,
    max_batches: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> RotationResult:
    """Bring everything under the keyring's current data-encryption key, in batches.

    Continues an interrupted run for the same key, or starts one (an unfinished run for an
    older key is closed as superseded: the new run covers what it left). `max_batches` stops
    early, as an interruption would; `progress(n)` is called after each batch with the number
    of items it did. Raises keys.DecryptionError if a stored value does not open (altered);
    the batch it was in is rolled back and the run can be resumed once it is repaired.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    target = keyring.data_key_kid
    with Session(engine) as session:
        rotation = running(session=session)
        resumed = rotation is not None and rotation.target_kid == target
        if rotation is not None and not resumed:
            rotation.status, rotation.finished_at = "superseded", now()
            session.add(rotation)
            rotation = None
        if rotation is None:
            rotation = KeyRotation(
                purpose=DATA_ENCRYPTION,
                target_kid=target,
                status="running",
                started_at=now(),
                updated_at=now(),
            )
            session.add(rotation)
        session.commit()
        rotation_id = rotation.id
    done_batches = 0
    while True:
        with Session(engine) as session:
            count = _batch(session, keyring, batch_size)
            row = session.get(KeyRotation, rotation_id)
            assert row is not None
            row.updated_at = now()
            if count:
                row.processed += count
                row.batches += 1
            else:
                row.status, row.finished_at = "done", now()
            session.add(row)
            session.commit()
            result = RotationResult(
                rotation_id=rotation_id,
                target_kid=target,
                processed=row.processed,
                batches=row.batches,
                finished=row.status == "done",
                resumed=resumed,
            )
        if not count:
            return result
        if progress is not None:
            progress(count)
        done_batches += 1
        if max_batches is not None and done_batches >= max_batches:
            return result
