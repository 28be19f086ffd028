"""The hash-chained audit log: append, and verify the whole chain.

Each entry's hash covers the previous entry's hash, its sequence number, kind, time and
canonical body, so editing, deleting or reordering a stored row breaks the chain at that row.
A later issue adds the Merkle tree and signed checkpoints on top of this chain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, text
from sqlmodel import Session, col, select

from hub.errors import AuditUnavailable, VerificationError
from hub.storage.models import AuditEntry

GENESIS_HASH = "0" * 64
_CHAIN_PREFIX = b"hub-audit-chain-v1\x00"
# Any constant works; it names the advisory lock that serialises appends on PostgreSQL.
_APPEND_LOCK_ID = 0x4855_4241_5544


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _entry_hash(*, prev_hash: str, seq: int, kind: str, at: datetime, body: str) -> str:
    material = canonical_json({"seq": seq, "kind": kind, "at": _rfc3339(at), "body": body})
    return hashlib.sha256(_CHAIN_PREFIX + prev_hash.encode() + material.encode()).hexdigest()


def append(*, session: Session, kind: str, body: dict[str, Any], now: datetime) -> AuditEntry:
    """Add one entry at the head of the chain, inside the caller's transaction.

    The caller commits; until then the entry is not durable and nothing may be disclosed.
    Raises AuditUnavailable if the head cannot be read or the entry cannot be written.
    """
    try:
        bind = session.get_bind()
        if bind.dialect.name == "postgresql":
            # One writer at a time keeps the chain linear across workers.
            session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _APPEND_LOCK_ID})
        head = session.exec(
            select(AuditEntry).order_by(col(AuditEntry.seq).desc()).limit(1)
        ).first()
        seq = 1 if head is None else head.seq + 1
        prev_hash = GENESIS_HASH if head is None else head.entry_hash
        at = now.astimezone(UTC)
        # Microseconds are what every backend stores, so the hash is computed on exactly that.
        body_text = canonical_json(body)
        entry = AuditEntry(
            seq=seq,
            at=at,
            kind=kind,
            body=body_text,
            prev_hash=prev_hash,
            entry_hash=_entry_hash(prev_hash=prev_hash, seq=seq, kind=kind, at=at, body=body_text),
        )
        session.add(entry)
        session.flush()
    except AuditUnavailable:
        raise
    except Exception as exc:
        raise AuditUnavailable("audit entry could not be written") from exc
    return entry


@dataclass(frozen=True)
class VerifyReport:
    entries: int
    head_hash: str


def verify(*, session: Session, batch: int = 1000) -> VerifyReport:
    """Walk the chain from the first entry.

    Raises VerificationError naming the first entry that is missing, out of place or altered.
    """
    expected_seq = 1
    prev_hash = GENESIS_HASH
    while True:
        rows = session.exec(
            select(AuditEntry)
            .where(col(AuditEntry.seq) >= expected_seq)
            .order_by(col(AuditEntry.seq))
            .limit(batch)
        ).all()
        if not rows:
            break
        for row in rows:
            if row.seq != expected_seq:
                raise VerificationError(
                    f"entry {expected_seq} is missing (next stored entry is {row.seq})",
                    details={"entry": expected_seq},
                )
            if row.prev_hash != prev_hash:
                raise VerificationError(
                    f"entry {row.seq} does not link to entry {row.seq - 1}",
                    details={"entry": row.seq},
                )
            recomputed = _entry_hash(
                prev_hash=row.prev_hash, seq=row.seq, kind=row.kind, at=row.at, body=row.body
            )
            if recomputed != row.entry_hash:
                raise VerificationError(
                    f"entry {row.seq} has been altered (hash does not match its content)",
                    details={"entry": row.seq},
                )
            prev_hash = row.entry_hash
            expected_seq += 1
    return VerifyReport(entries=expected_seq - 1, head_hash=prev_hash)


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
