"""Re-indexing subjects indexed under an older name normaliser or an older blind-index key, in
resumable batches.

Blind indexes are keyed hashes of normalised names and dates, so a change to the normaliser
(hub.matching) leaves older subjects under indexes new referrals no longer compute: the same
person would become a second subject. `run_reindex` decrypts each such subject's identity,
recomputes its indexes with the current normaliser and records the version, one transaction
per batch, with progress in `key_rotation` (purpose "reindex"). Each batch selects only what is
left, so an interrupted run continues where it stopped, and the hub keeps serving: until a
subject is re-indexed, lookups also try the older normalisation.

`run_blind_index_rotation` does the same after `hub keys rotate blind-index` has added a new
blind-index key: it re-indexes every subject whose indexes (identity, single fields, local
identifiers) are under an older key (progress purpose "blind-index"). Meanwhile lookups try
every blind-index key held, so a known person is found whether re-indexed yet or not. Each
re-indexed subject is brought to the current normaliser too.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, func
from sqlalchemy.sql.functions import coalesce
from sqlmodel import Session, col, or_, select

from hub.services import key_rotation, subjects
from hub.services.key_rotation import RotationResult
from hub.storage.models import Subject
from keys import KeyRing

PURPOSE = "reindex"
BLIND_INDEX_PURPOSE = "blind-index"
# Every blind-index column, each recomputed by `subjects.reindex` (a test keeps this complete).
BLIND_INDEX_COLUMNS = (
    ("subject", "identity_index"),
    ("subject_field_index", "given_name_index"),
    ("subject_field_index", "family_name_index"),
    ("subject_field_index", "date_of_birth_index"),
    ("subject_local_id", "local_id_index"),
)


def _stale() -> ColumnElement[bool]:
    column = col(Subject.index_version)
    return or_(column.is_(None), column != subjects.NORMALISER_VERSION)


def remaining(*, session: Session) -> int:
    """How many subjects are not yet indexed with the current normaliser."""
    query = select(func.count()).select_from(Subject).where(_stale())
    return int(session.exec(query).one())


def _blind_index_version() -> ColumnElement[str]:
    return coalesce(col(Subject.blind_index_version), subjects.FIRST_BLIND_INDEX_VERSION)


def under_older_key(*, session: Session, keyring: KeyRing) -> int:
    """How many subjects are indexed under a blind-index key other than the current one."""
    query = (
        select(func.count())
        .select_from(Subject)
        .where(_blind_index_version() != keyring.blind_index_version)
    )
    return int(session.exec(query).one())


def still_under(*, session: Session, version: str) -> int:
    """How many subjects are indexed under blind-index key `version`: it can be retired only
    when this is 0."""
    query = select(func.count()).select_from(Subject).where(_blind_index_version() == version)
    return int(session.exec(query).one())


def run_reindex(
    *,
    engine: Engine,
    keyring: KeyRing,
    now: Callable[[], datetime],
    batch_size: int = 200,
    max_batches: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> RotationResult:
    """Bring every subject's blind indexes to the current normaliser, in batches.

    Continues an interrupted run for the same normaliser version or starts one. `max_batches`
    stops early, as an interruption would; `progress(n)` is called after each batch. Raises
    ValueError for a batch size below 1, keys.DecryptionError if an identity does not open
    (altered row); that batch is rolled back and the run can be resumed once it is repaired.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")

    def do_batch(session: Session) -> int:
        batch = session.exec(
            select(Subject).where(_stale()).order_by(col(Subject.id)).limit(batch_size)
        ).all()
        for subject in batch:
            subjects.reindex(session=session, keyring=keyring, subject=subject)
        return len(batch)

    return key_rotation.run_in_batches(
        engine=engine,
        purpose=PURPOSE,
        target=subjects.NORMALISER_VERSION,
        now=now,
        do_batch=do_batch,
        max_batches=max_batches,
        progress=progress,
    )


def run_blind_index_rotation(
    *,
    engine: Engine,
    keyring: KeyRing,
    now: Callable[[], datetime],
    batch_size: int = 200,
    max_batches: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> RotationResult:
    """Bring every subject's blind indexes under the keyring's current blind-index key, in
    batches (the run's target is that key's id).

    Continues an interrupted run for the same key or starts one; `max_batches` and `progress`
    as for `run_reindex`. Raises ValueError for a batch size below 1, keys.DecryptionError if
    an identity or local identifier does not open (altered row); that batch is rolled back and
    the run can be resumed once it is repaired.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    # Fixed for the run, even if the keyring takes in a later rotation meanwhile: the next
    # run, towards that key, covers what this one did.
    version, target = keyring.blind_index_version, keyring.blind_index_kid

    def do_batch(session: Session) -> int:
        batch = session.exec(
            select(Subject)
            .where(_blind_index_version() != version)
            .order_by(col(Subject.id))
            .limit(batch_size)
        ).all()
        for subject in batch:
            subjects.reindex(session=session, keyring=keyring, subject=subject, version=version)
        return len(batch)

    return key_rotation.run_in_batches(
        engine=engine,
        purpose=BLIND_INDEX_PURPOSE,
        target=target,
        now=now,
        do_batch=do_batch,
        max_batches=max_batches,
        progress=progress,
    )
