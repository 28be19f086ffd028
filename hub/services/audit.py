"""The audit log: append entries, make them durable, verify the whole log.

Each entry is stored once and committed to twice:

- as leaf `seq - 1` of an RFC 9162 Merkle tree, leaf hash = SHA-256(0x00 || canonical entry),
  whose complete subtree hashes are stored as the entry is appended (`audit_tree`), so signed
  checkpoints, inclusion proofs and consistency proofs cost O(log n) reads;
- as a link of a hash chain over the same canonical bytes, for a fast sequential check.

The canonical entry is `hub.audit.verifier.entry_bytes`: references and digests only, never
personal data. The database refuses UPDATE and DELETE on the log's tables (migration 0002).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, text
from sqlmodel import Session, func, select

from hub.audit.notes import CheckpointSigner
from hub.audit.verifier import GENESIS_HASH, VerifierKey, chain_hash, entry_bytes, leaf_hash
from hub.errors import AuditUnavailable
from hub.services import audit_checkpoints, audit_tree, audit_verify
from hub.services.audit_verify import VerifyReport
from hub.storage.models import AuditEntry
from hub.storage.types import UTCDateTime

__all__ = [
    "GENESIS_HASH",
    "VerifyReport",
    "append",
    "canonical_json",
    "commit",
    "count",
    "digest",
    "entry_data",
    "rfc3339",
    "verify",
]


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 kept.

    For the values the hub logs (strings, integers, booleans, null, lists and objects) this is
    the RFC 8785 canonical form.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def rfc3339(at: datetime) -> str:
    """An entry's time as hashed: UTC with microseconds, which every backend stores exactly."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_data(entry: AuditEntry) -> bytes:
    """The canonical bytes of a stored entry: its Merkle leaf data and chain material."""
    return entry_bytes(seq=entry.seq, kind=entry.kind, at=rfc3339(entry.at), body=entry.body)


# Plain statements on the session's connection: an append is the hot path, and the ORM's
# unit of work costs more than the database does here.
_ADVANCE_HEAD = text(
    "UPDATE audit_head SET size = size + 1 WHERE id = :id RETURNING size, chain_hash"
)
_INSERT_ENTRY = text(
    "INSERT INTO audit_entry (seq, at, kind, body, prev_hash, entry_hash) "
    "VALUES (:seq, :at, :kind, :body, :prev_hash, :entry_hash)"
).bindparams(bindparam("at", type_=UTCDateTime()))
_SET_CHAIN_HEAD = text("UPDATE audit_head SET chain_hash = :chain_hash WHERE id = :id")


def _advance_head(connection: Connection) -> tuple[int, str]:
    # Updating the cursor is the append's first write: on SQLite it takes the database's write
    # lock before anything is read, on PostgreSQL the cursor row's lock; either way the next
    # appender waits here until this transaction ends, so sequence numbers never fork.
    row = connection.execute(_ADVANCE_HEAD, {"id": audit_tree.HEAD_ID}).one_or_none()
    if row is None:
        raise AuditUnavailable("the audit log's cursor is missing; run `hub init`")
    return int(row[0]), str(row[1])


def append(
    *,
    session: Session,
    kind: str,
    body: dict[str, Any],
    now: datetime,
    signer: CheckpointSigner | None = None,
) -> AuditEntry:
    """Add one entry at the head of the log, inside the caller's transaction.

    The caller commits; until then the entry is not durable and nothing may be disclosed.
    The returned entry is not added to the session (it is written directly).
    With a `signer`, every `audit_checkpoints.CHECKPOINT_EVERY`-th entry also gets a signed
    checkpoint in the same transaction. Raises AuditUnavailable if the head cannot be read or
    the entry cannot be written.
    """
    try:
        connection = session.connection()
        seq, prev_hash = _advance_head(connection)
        at = now.astimezone(UTC)
        body_text = canonical_json(body)
        data = entry_bytes(seq=seq, kind=kind, at=rfc3339(at), body=body_text)
        entry = AuditEntry(
            seq=seq,
            at=at,
            kind=kind,
            body=body_text,
            prev_hash=prev_hash,
            entry_hash=chain_hash(prev_hash=prev_hash, entry=data),
        )
        connection.execute(
            _INSERT_ENTRY,
            {
                "seq": seq,
                "at": at,
                "kind": kind,
                "body": body_text,
                "prev_hash": prev_hash,
                "entry_hash": entry.entry_hash,
            },
        )
        audit_tree.add_leaf(connection, index=seq - 1, leaf=leaf_hash(data))
        connection.execute(
            _SET_CHAIN_HEAD, {"chain_hash": entry.entry_hash, "id": audit_tree.HEAD_ID}
        )
        if signer is not None and seq % audit_checkpoints.CHECKPOINT_EVERY == 0:
            audit_checkpoints.make(session=session, signer=signer, now=now, tree_size=seq)
            session.flush()
    except AuditUnavailable:
        raise
    except Exception as exc:
        raise AuditUnavailable("audit entry could not be written") from exc
    return entry


def verify(
    *,
    session: Session,
    keys: Sequence[VerifierKey] = (),
    origin: str | None = None,
    held: Sequence[str] = (),
    batch: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Recompute the chain, the tree and every checkpoint; see `audit_verify.verify`.

    Raises VerificationError naming the first entry (or checkpoint) that fails.
    """
    return audit_verify.verify(
        session=session, keys=keys, origin=origin, held=held, batch=batch, progress=progress
    )


def count(*, session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(AuditEntry)).one())


def commit(*, session: Session) -> None:
    """Make the transaction, and the audit entries in it, durable.

    Raises AuditUnavailable if the database refuses; the caller then answers nothing.
    """
    try:
        session.commit()
    except Exception as exc:
        session.rollback()
        raise AuditUnavailable("audit entry could not be made durable") from exc
