"""Signed checkpoints of the audit log: made on demand, every N entries
(`HUB_AUDIT_CHECKPOINT_EVERY`), when entries have waited T seconds for one
(`HUB_AUDIT_CHECKPOINT_SECONDS`, see `audit_writer`), and for receipts; all kept, one per tree
size.

A checkpoint is signed only over a root recomputed from the stored tree, which only grows, so
no two checkpoints the hub signs can be inconsistent unless its database was rewritten — and
then `hub audit verify` names the checkpoint the log forks from.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, bindparam, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from hub.audit.notes import CheckpointSigner, origin_for
from hub.audit.verifier import VerifierKey
from hub.config import Settings
from hub.errors import AuditUnavailable
from hub.services import audit_tree
from hub.storage.models import AuditCheckpoint
from hub.storage.types import UTCDateTime
from keys import KeyRing, KeysError

# Entries between two automatic checkpoints when no setting is given
# (`Settings.audit_checkpoint_every` is the running hub's value).
CHECKPOINT_EVERY = 1000
# How often a checkpoint is retried when another worker stores the same tree size first.
_STORE_ATTEMPTS = 5


def log_origin(settings: Settings) -> str:
    """The log's name in its checkpoints: `HUB_AUDIT_ORIGIN` if set (pin it in production so a
    change of public URL never breaks old checkpoints), else derived from `HUB_PUBLIC_URL`.

    Raises ValueError if neither gives a usable name.
    """
    return settings.audit_origin or origin_for(settings.public_url)


def signer_for(*, keyring: KeyRing, settings: Settings) -> CheckpointSigner:
    """The signer of this hub's log: origin from `settings.public_url`, the keyring's key.

    Raises AuditUnavailable if the keyring has no checkpoint-signing key (run `hub init`) or
    the public URL cannot name the log.
    """
    try:
        return CheckpointSigner(
            origin=log_origin(settings),
            private_key=keyring.checkpoint_signing_private(),
        )
    except (KeysError, ValueError) as exc:
        raise AuditUnavailable(f"checkpoints cannot be signed: {exc}") from exc


def verifier_keys(*, keyring: KeyRing, settings: Settings) -> tuple[list[VerifierKey], str]:
    """The keys that verify this hub's checkpoints (every checkpoint key in the keyring, so
    checkpoints signed before a rotation still verify), and the log's origin.

    The origin comes from `settings.public_url`; changing that URL changes the key name, so it
    must stay stable for old checkpoints to verify. Raises AuditUnavailable if the public URL
    cannot name the log.
    """
    try:
        origin = log_origin(settings)
    except ValueError as exc:
        raise AuditUnavailable(f"checkpoints cannot be verified: {exc}") from exc
    keys = [
        VerifierKey.for_ed25519(name=origin, public_key=public)
        for public in keyring.checkpoint_verifying_keys()
    ]
    return keys, origin


def latest(*, session: Session) -> AuditCheckpoint | None:
    return session.exec(
        select(AuditCheckpoint).order_by(col(AuditCheckpoint.tree_size).desc()).limit(1)
    ).first()


def at_size(*, session: Session, tree_size: int) -> AuditCheckpoint | None:
    return session.exec(
        select(AuditCheckpoint).where(col(AuditCheckpoint.tree_size) == tree_size)
    ).first()


def first_covering(*, session: Session, index: int) -> AuditCheckpoint | None:
    """The smallest checkpoint whose tree includes leaf `index`."""
    return session.exec(
        select(AuditCheckpoint)
        .where(col(AuditCheckpoint.tree_size) > index)
        .order_by(col(AuditCheckpoint.tree_size))
        .limit(1)
    ).first()


def all_in_order(*, session: Session) -> Sequence[AuditCheckpoint]:
    return session.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.tree_size))).all()


def make(
    *, session: Session, signer: CheckpointSigner, now: datetime, tree_size: int
) -> AuditCheckpoint:
    """Sign the tree of `tree_size` leaves and add the checkpoint to the caller's transaction;
    if one of that size exists, return it instead.

    Raises BadRequest if the log is smaller, VerificationError if the stored tree is damaged.
    """
    existing = at_size(session=session, tree_size=tree_size)
    if existing is not None:
        return existing
    root = audit_tree.root_at(session, tree_size)
    checkpoint = AuditCheckpoint(
        tree_size=tree_size,
        root_hash=root.hex(),
        note=signer.checkpoint(tree_size=tree_size, root=root),
        made_at=now,
    )
    session.add(checkpoint)
    return checkpoint


# Both backends accept this upsert form; a size already signed (by another worker) is kept.
_STORE = text(
    "INSERT INTO audit_checkpoint (tree_size, root_hash, note, made_at) "
    "VALUES (:tree_size, :root_hash, :note, :made_at) ON CONFLICT (tree_size) DO NOTHING "
    "RETURNING tree_size"
).bindparams(bindparam("made_at", type_=UTCDateTime()))


def store(
    connection: Connection,
    *,
    signer: CheckpointSigner,
    tree_size: int,
    now: datetime,
    root: bytes | None = None,
) -> str | None:
    """Sign the tree of `tree_size` leaves as the caller's transaction sees it (an appender's
    own new entries included) and add the checkpoint to that transaction, unless one of that
    size is already stored. `root` is that tree's hash when the caller has just computed it
    from the nodes it wrote (the group-commit writer); else it is read from the stored tree.
    Returns the note if this call stored it, None if that size was already signed.

    Raises VerificationError if a stored tree node is missing.
    """
    if root is None:
        root = audit_tree.root_on(connection, tree_size)
    note = signer.checkpoint(tree_size=tree_size, root=root)
    stored = connection.execute(
        _STORE,
        {"tree_size": tree_size, "root_hash": root.hex(), "note": note, "made_at": now},
    ).first()
    return note if stored is not None else None


def periodic_sizes(*, after: int, upto: int, every: int) -> range:
    """The tree sizes in (after, upto] that get an every-`every`-entries checkpoint."""
    return range((after // every + 1) * every, upto + 1, every)


def _missing_periodic_sizes(session: Session, upto: int, every: int) -> range:
    done = session.exec(
        select(func.max(AuditCheckpoint.tree_size)).where(
            col(AuditCheckpoint.tree_size) % every == 0
        )
    ).one()
    return periodic_sizes(after=done or 0, upto=upto, every=every)


def _store_now(
    session: Session, signer: CheckpointSigner, now: datetime, every: int | None
) -> AuditCheckpoint:
    # One attempt; IntegrityError means another worker stored a checkpoint of a size first.
    tree_size = audit_tree.size(session)
    for periodic in _missing_periodic_sizes(session, tree_size, every or CHECKPOINT_EVERY):
        make(session=session, signer=signer, now=now, tree_size=periodic)
    checkpoint = make(session=session, signer=signer, now=now, tree_size=tree_size)
    session.commit()
    return checkpoint


def checkpoint_now(
    *,
    session: Session,
    signer: CheckpointSigner,
    now: datetime,
    checkpoint_every: int | None = None,
) -> AuditCheckpoint:
    """Sign the log as it stands, plus any every-`checkpoint_every` checkpoint not yet made
    (default `CHECKPOINT_EVERY`; appends without a signer leave those to the next signer), and
    commit.

    Raises AuditUnavailable if the checkpoints cannot be stored, VerificationError if the
    stored tree is damaged.
    """
    for _ in range(_STORE_ATTEMPTS):
        try:
            return _store_now(session, signer, now, checkpoint_every)
        except IntegrityError:
            session.rollback()
    raise AuditUnavailable("the checkpoint could not be stored")


def covering(
    *, session: Session, signer: CheckpointSigner, index: int, now: datetime
) -> AuditCheckpoint:
    """A checkpoint whose tree includes leaf `index` (of a committed entry): the first stored
    one, or a new one of the log as it stands (committed).

    Concurrent callers share checkpoints: when another worker stores the same size first, its
    checkpoint covers this leaf too and is used. Raises AuditUnavailable if no checkpoint can
    be stored, VerificationError if the stored tree is damaged.
    """
    for _ in range(_STORE_ATTEMPTS):
        found = first_covering(session=session, index=index)
        if found is not None:
            return found
        try:
            return _store_now(session, signer, now, None)
        except IntegrityError:
            session.rollback()
    raise AuditUnavailable("no checkpoint covering the entry could be stored")
