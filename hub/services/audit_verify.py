"""`hub audit verify`: recompute the whole log and name the first thing that is wrong.

One pass over the entries in order, in batches, recomputes each entry's chain link and leaf
hash, rebuilds the Merkle tree (O(log n) memory) and compares every stored subtree hash and
every checkpoint root as the tree reaches its size. It finds:

- a changed entry (its chain hash or its leaf differs), a deleted one (a gap), an inserted or
  reordered one (a link that does not follow);
- a log rewritten consistently, chain and tree included: the first checkpoint whose root the
  entries no longer produce (the log forks from it) is named, with the first entry that may
  differ;
- a truncated log: a checkpoint (stored, or held by an agency) larger than the log, tree nodes
  or an append cursor beyond its last entry;
- a checkpoint whose signature or stored row does not match its note.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Row, String, select, type_coerce
from sqlmodel import Session, col, func

from hub.audit.verifier import (
    GENESIS_HASH,
    Checkpoint,
    Frontier,
    SignedNote,
    VerificationFailed,
    VerifierKey,
    chain_hash,
    entry_bytes,
    leaf_hash,
)
from hub.errors import VerificationError
from hub.services import audit_tree
from hub.storage.models import AuditCheckpoint, AuditEntry, AuditNode


def _rfc3339(at: datetime | str) -> str:
    # As `audit.rfc3339` formats an entry time, "...T09:00:00.000001Z". The column is read
    # raw (SQLite gives its stored text, PostgreSQL a datetime) and converted with the C-fast
    # fromisoformat/isoformat: verify formats every entry's time, and the column type's own
    # parsing cost more than all the hashing.
    when = datetime.fromisoformat(at) if isinstance(at, str) else at
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # SQLite stores UTC without a zone
    return when.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


@dataclass(frozen=True)
class VerifyReport:
    entries: int
    head_hash: str
    root_hash: str
    checkpoints: int
    signatures_checked: bool


@dataclass(frozen=True)
class _Anchor:
    """A tree size whose root some signed statement fixes."""

    tree_size: int
    root: bytes
    label: str


def _fail(message: str, **details: int) -> VerificationError:
    return VerificationError(message, details=details or None)


def _open(note: str, keys: Sequence[VerifierKey], origin: str | None, label: str) -> Checkpoint:
    problems = []
    for key in keys:
        try:
            return Checkpoint.from_text(note, key=key, origin=origin)
        except VerificationFailed as exc:
            problems.append(str(exc))
    raise _fail(f"{label} does not verify: {'; '.join(problems) or 'no key to check it'}")


def _unsigned_body(note: str, label: str) -> tuple[int, bytes]:
    # Without the public key only the form can be checked; the report says so.
    try:
        lines = SignedNote.from_text(note).text[:-1].split("\n")
        if len(lines) < 3 or not lines[1].isdigit():
            raise VerificationFailed("not a checkpoint")
        return int(lines[1]), base64.b64decode(lines[2], validate=True)
    except (VerificationFailed, ValueError, binascii.Error) as exc:
        raise _fail(f"{label} is malformed: {exc}") from None


def _anchors(
    session: Session, keys: Sequence[VerifierKey], origin: str | None, held: Sequence[str]
) -> tuple[list[_Anchor], int]:
    anchors = []
    stored = session.execute(
        select(
            col(AuditCheckpoint.tree_size),
            col(AuditCheckpoint.root_hash),
            col(AuditCheckpoint.note),
        ).order_by(col(AuditCheckpoint.tree_size))
    ).all()
    for tree_size, root_hex, note in stored:
        label = f"checkpoint at tree size {tree_size}"
        if keys:
            opened = _open(note, keys, origin, label)
            size, root = opened.tree_size, opened.root_hash
        else:
            size, root = _unsigned_body(note, label)
        if size != tree_size or root.hex() != root_hex:
            raise _fail(f"{label} was altered: its row does not match its signed note")
        anchors.append(_Anchor(tree_size=size, root=root, label=label))
    for number, note in enumerate(held, start=1):
        opened = _open(note, keys, origin, f"held checkpoint {number}")
        anchors.append(
            _Anchor(
                tree_size=opened.tree_size,
                root=opened.root_hash,
                label=f"held checkpoint {number} (tree size {opened.tree_size})",
            )
        )
    anchors.sort(key=lambda a: a.tree_size)
    return anchors, len(stored)


def _check_nodes(
    seq: int, completed: list[bytes], stored: Sequence[Row[int, int, int, str]], at: int
) -> int:
    """Compare the subtree hashes entry `seq` completes with the stored rows from `at` on;
    return the position after them."""
    for level, computed in enumerate(completed):
        expected = (seq, level)
        if at >= len(stored) or (stored[at][0], stored[at][1]) != expected:
            raise _fail(
                f"entry {seq}: its tree node at level {level} is missing", entry=seq, level=level
            )
        if stored[at][3] != computed.hex():
            if level == 0:
                raise _fail(f"entry {seq} does not match its leaf in the tree", entry=seq)
            first = seq - (1 << level) + 1
            raise _fail(f"tree node over entries {first}..{seq} does not match them", entry=first)
        at += 1
    if at < len(stored) and stored[at][0] == seq:
        raise _fail(f"entry {seq}: the tree has an extra node at level {stored[at][1]}", entry=seq)
    return at


def verify(
    *,
    session: Session,
    keys: Sequence[VerifierKey] = (),
    origin: str | None = None,
    held: Sequence[str] = (),
    batch: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Walk the whole log once; `keys` check the checkpoints' signatures, `held` are
    checkpoint notes kept by others (agencies, DPOs) that the log must still extend.

    Raises VerificationError naming the first entry, tree node or checkpoint that fails.
    """
    anchors, stored_checkpoints = _anchors(session, keys, origin, held)
    frontier = Frontier()
    prev_hash = GENESIS_HASH
    next_anchor = 0
    last_good = 0  # the largest anchored tree size the entries still produce
    while next_anchor < len(anchors) and anchors[next_anchor].tree_size == 0:
        if anchors[next_anchor].root != frontier.root():
            raise _fail(f"{anchors[next_anchor].label} has a wrong root for an empty log")
        next_anchor += 1
    connection = session.connection()
    while True:
        rows = connection.execute(
            select(
                col(AuditEntry.seq),
                type_coerce(col(AuditEntry.at), String),
                col(AuditEntry.kind),
                col(AuditEntry.body),
                col(AuditEntry.prev_hash),
                col(AuditEntry.entry_hash),
            )
            .where(col(AuditEntry.seq) > frontier.size)
            .order_by(col(AuditEntry.seq))
            .limit(batch)
        ).all()
        if not rows:
            break
        stored_nodes = connection.execute(
            select(
                col(AuditNode.complete_at),
                col(AuditNode.level),
                col(AuditNode.idx),
                col(AuditNode.digest),
            )
            .where(col(AuditNode.complete_at) > frontier.size)
            .where(col(AuditNode.complete_at) <= rows[-1][0])
            .order_by(col(AuditNode.complete_at), col(AuditNode.level))
        ).all()
        at = 0
        for seq, when, kind, body, row_prev, row_hash in rows:
            expected = frontier.size + 1
            if seq != expected:
                raise _fail(
                    f"entry {expected} is missing (next stored entry is {seq})", entry=expected
                )
            if row_prev != prev_hash:
                raise _fail(f"entry {seq} does not link to entry {seq - 1}", entry=seq)
            data = entry_bytes(seq=seq, kind=kind, at=_rfc3339(when), body=body)
            if chain_hash(prev_hash=prev_hash, entry=data) != row_hash:
                raise _fail(
                    f"entry {seq} has been altered (hash does not match its content)", entry=seq
                )
            at = _check_nodes(seq, frontier.append(leaf_hash(data)), stored_nodes, at)
            prev_hash = row_hash
            while next_anchor < len(anchors) and anchors[next_anchor].tree_size == seq:
                anchor = anchors[next_anchor]
                if anchor.root != frontier.root():
                    raise _fail(
                        f"{anchor.label} does not match the log: entries {last_good + 1}..{seq} "
                        f"no longer produce its root, so the log forks from it (first entry "
                        f"that may differ: {last_good + 1})",
                        entry=last_good + 1,
                        checkpoint=seq,
                    )
                last_good = seq
                next_anchor += 1
        if progress is not None:
            progress(len(rows))
    entries = frontier.size
    _check_not_truncated(session, anchors[next_anchor:], entries)
    return VerifyReport(
        entries=entries,
        head_hash=prev_hash,
        root_hash=frontier.root().hex(),
        checkpoints=stored_checkpoints,
        signatures_checked=bool(keys),
    )


def _check_not_truncated(session: Session, beyond: Sequence[_Anchor], entries: int) -> None:
    for anchor in beyond:
        if anchor.tree_size > entries:
            raise _fail(
                f"the log is truncated: {anchor.label} covers {anchor.tree_size} entries but "
                f"the log ends at entry {entries}; entry {entries + 1} is missing",
                entry=entries + 1,
            )
    cursor = audit_tree.size(session)
    if cursor > entries:
        raise _fail(
            f"the log is truncated: its cursor is at {cursor} entries but the log ends at "
            f"entry {entries}; entry {entries + 1} is missing",
            entry=entries + 1,
        )
    if cursor < entries:
        raise _fail(
            f"entry {cursor + 1} was not appended through the log (its cursor is at {cursor})",
            entry=cursor + 1,
        )
    beyond_nodes = session.execute(
        select(func.count()).select_from(AuditNode).where(col(AuditNode.complete_at) > entries)
    ).scalar_one()
    if beyond_nodes:
        raise _fail(
            f"the log is truncated: the tree has nodes beyond entry {entries}; "
            f"entry {entries + 1} is missing",
            entry=entries + 1,
        )
