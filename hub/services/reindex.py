"""Re-indexing subjects indexed under an older name normaliser, in resumable batches.

Blind indexes are keyed hashes of normalised names and dates, so a change to the normaliser
(hub.matching) leaves older subjects under indexes new referrals no longer compute: the same
person would become a second subject. `run_reindex` decrypts each such subject's identity,
recomputes its indexes with the current normaliser and records the version, one transaction
per batch, with progress in `key_rotation` (purpose "reindex"). Each batch selects only what is
left, so an interrupted run continues where it stopped, and the hub keeps serving: until a
subject is re-indexed, lookups also try the older normalisation.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, func
from sqlmodel import Session, col, or_, select

from hub.services import key_rotation, subjects
from hub.services.key_rotation import RotationResult
from hub.storage.models import Subject
from keys import KeyRing

PURPOSE = "reindex"


def _stale() -> ColumnElement[bool]:
    column = col(Subject.index_version)
    return or_(column.is_(None), column != subjects.NORMALISER_VERSION)


def remaining(*, session: Session) -> int:
    """How many subjects are not yet indexed with the current normaliser."""
    query = select(func.count()).select_from(Subject).where(_stale())
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
