"""Rotation of the data-encryption key (the key-encryption key) without loss.

`hub keys rotate data-encryption` adds a new key to the keystore (it writes from then on; the
old one still reads) and then runs `run_data_key_rotation`, which, in batches of one
transaction each:

1. re-wraps every subject data key still wrapped under an older key-encryption key;
2. re-seals under the subject's own key every identity, local identifier and case summary still
   sealed directly under the keyring (values written before per-subject keys existed);
3. re-encrypts under the current key every other keyring-sealed value under an older key
   (consent change reasons, webhook secrets, access-request justifications and decision
   reasons, break-glass review notes: `KEYRING_SEALED`).

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

from hub.services import access_requests, subject_keys
from hub.services.breakglass import _note_ad
from hub.services.notifications import secret_associated_data
from hub.storage.models import (
    AccessRequest,
    AgencyWebhook,
    BreakGlass,
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


@dataclass(frozen=True)
class _KeyringSealed:
    """A column sealed directly under the keyring's data-encryption key, and how to name the
    associated data of one row's value."""

    model: Any
    column: str
    key: str  # the primary-key attribute, for a stable batch order
    associated_data: Callable[[Any], bytes]


# Every column sealed under the keyring rather than a subject's own key. A rotation re-encrypts
# each under the current key, and a data-encryption key is retired only once none is left.
KEYRING_SEALED = (
    _KeyringSealed(
        ConsentChange, "reason_ciphertext", "id", lambda r: f"consent_change/{r.id}/reason".encode()
    ),
    _KeyringSealed(
        AgencyWebhook,
        "secret_ciphertext",
        "agency_id",
        lambda r: secret_associated_data(r.agency_id),
    ),
    _KeyringSealed(
        AccessRequest,
        "justification_ciphertext",
        "id",
        lambda r: access_requests.associated_data(r.id, "justification"),
    ),
    _KeyringSealed(
        AccessRequest,
        "reason_ciphertext",
        "id",
        lambda r: access_requests.associated_data(r.id, "reason"),
    ),
    _KeyringSealed(BreakGlass, "review_note_ciphertext", "id", lambda r: _note_ad(r.id)),
)


def _sealed_under_other_keys(sealed: _KeyringSealed, current: str) -> Any:
    column = col(getattr(sealed.model, sealed.column))
    return (column.like(_LEGACY), column.not_like(f"v1.{current}.%"))


def _reencrypt_keyring_values(session: Session, keyring: KeyRing, size: int) -> int:
    current = keyring.data_key_kid
    for sealed in KEYRING_SEALED:
        rows = session.exec(
            select(sealed.model)
            .where(*_sealed_under_other_keys(sealed, current))
            .order_by(col(getattr(sealed.model, sealed.key)))
            .limit(size)
        ).all()
        for row in rows:
            token = getattr(row, sealed.column)
            assert _legacy_under_old_key(token, current)
            ad = sealed.associated_data(row)
            plain = keyring.decrypt(token, associated_data=ad)
            setattr(row, sealed.column, keyring.encrypt(plain, associated_data=ad))
            session.add(row)
        if rows:
            return len(rows)
    return 0


def still_under(*, session: Session, kid: str) -> int:
    """How many stored items a data-encryption key `kid` still wraps or encrypts: it can be
    retired only when this is 0."""
    pattern = f"v1.{kid}.%"
    counts = [
        select(func.count()).select_from(SubjectKey).where(SubjectKey.kek_kid == kid),
        select(func.count())
        .select_from(Subject)
        .where(col(Subject.identity_ciphertext).like(pattern)),
        select(func.count())
        .select_from(SubjectLocalId)
        .where(col(SubjectLocalId.local_id_ciphertext).like(pattern)),
        select(func.count()).select_from(Case).where(col(Case.summary_ciphertext).like(pattern)),
        *(
            select(func.count())
            .select_from(sealed.model)
            .where(col(getattr(sealed.model, sealed.column)).like(pattern))
            for sealed in KEYRING_SEALED
        ),
    ]
    return sum(int(session.exec(query).one()) for query in counts)


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
    counts = [
        select(func.count()).select_from(SubjectKey).where(SubjectKey.kek_kid != current),
        select(func.count())
        .select_from(Subject)
        .where(col(Subject.identity_ciphertext).like(_LEGACY)),
        select(func.count())
        .select_from(SubjectLocalId)
        .where(col(SubjectLocalId.local_id_ciphertext).like(_LEGACY)),
        select(func.count()).select_from(Case).where(col(Case.summary_ciphertext).like(_LEGACY)),
        *(
            select(func.count())
            .select_from(sealed.model)
            .where(*_sealed_under_other_keys(sealed, current))
            for sealed in KEYRING_SEALED
        ),
    ]
    return sum(int(session.exec(query).one()) for query in counts)


def start_or_resume(
    *, engine: Engine, purpose: str, target: str, now: Callable[[], datetime]
) -> tuple[str, bool]:
    """The id of the run of `purpose` towards `target`, and whether it was already under way.

    An unfinished run towards another target is closed as superseded: the new run covers what
    it left.
    """
    with Session(engine) as session:
        run = running(session=session, purpose=purpose)
        resumed = run is not None and run.target_kid == target
        if run is not None and not resumed:
            run.status, run.finished_at = "superseded", now()
            session.add(run)
            run = None
        if run is None:
            run = KeyRotation(
                purpose=purpose,
                target_kid=target,
                status="running",
                started_at=now(),
                updated_at=now(),
            )
            session.add(run)
        session.commit()
        return run.id, resumed


def run_in_batches(
    *,
    engine: Engine,
    purpose: str,
    target: str,
    now: Callable[[], datetime],
    do_batch: Callable[[Session], int],
    max_batches: int | None,
    progress: Callable[[int], None] | None,
) -> RotationResult:
    """Start or resume the run of `purpose` towards `target`, then call `do_batch` (which does
    one batch in the session and returns how many items it did) until it does none, each batch
    committed with the run's progress. Raises what `do_batch` raises; that batch is rolled back.
    """
    run_id, resumed = start_or_resume(engine=engine, purpose=purpose, target=target, now=now)
    done = 0
    while True:
        with Session(engine) as session:
            count = do_batch(session)
            row = session.get(KeyRotation, run_id)
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
                rotation_id=run_id,
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
        done += 1
        if max_batches is not None and done >= max_batches:
            return result


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
    return run_in_batches(
        engine=engine,
        purpose=DATA_ENCRYPTION,
        target=keyring.data_key_kid,
        now=now,
        do_batch=lambda session: _batch(session, keyring, batch_size),
        max_batches=max_batches,
        progress=progress,
    )
