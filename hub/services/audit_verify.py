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
import hashlib
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, select
from sqlmodel import Session, col, func

from hub.audit.verifier import (
    CHAIN_PREFIX,
    GENESIS_HASH,
    LEAF_PREFIX,
    NODE_PREFIX,
    Checkpoint,
    Frontier,
    SignedNote,
    VerificationFailed,
    VerifierKey,
    chain_hash,
    entry_bytes,
    leaf_hash,
    node_hash,
)
from hub.errors import VerificationError
from hub.services import audit_tree
from hub.storage.models import AuditCheckpoint, AuditNode

# The JSON string encoder of `entry_bytes` (C-accelerated), called here without the wrapper.
_json_string = json.encoder.encode_basestring


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


@dataclass(frozen=True)
class _Walk:
    """Where the walk stands after a batch."""

    frontier: Frontier
    prev_hash: str
    next_anchor: int
    last_good: int  # the largest anchored tree size the entries still produce


# Plain driver statements for the walk, one pair per backend (their parameter styles differ).
# PostgreSQL formats the time in its canonical form; SQLite returns the text it stores.
_ENTRIES = {
    "sqlite": "SELECT seq, at, kind, body, prev_hash, entry_hash FROM audit_entry "
    "WHERE seq > ? ORDER BY seq LIMIT ?",
    "postgresql": "SELECT seq, to_char(at AT TIME ZONE 'UTC', "
    '\'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\'), kind, body, prev_hash, entry_hash '
    "FROM audit_entry WHERE seq > %s ORDER BY seq LIMIT %s",
}
_NODES = {
    "sqlite": "SELECT complete_at, level, digest FROM audit_node "
    "WHERE complete_at > ? AND complete_at <= ? ORDER BY complete_at, level",
    "postgresql": "SELECT complete_at, level, digest FROM audit_node "
    "WHERE complete_at > %s AND complete_at <= %s ORDER BY complete_at, level",
}


def _fetch(
    connection: Connection, statements: dict[str, str], params: tuple[int, int]
) -> list[Any]:
    # The driver's own cursor and tuples: the column types' processing cost more than hashing.
    cursor = connection.connection.cursor()
    try:
        cursor.execute(statements[connection.dialect.name], params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _raw_entries(connection: Connection, *, after: int, limit: int) -> list[Any]:
    """The next entries as (seq, at text, kind, body, prev_hash, entry_hash)."""
    return _fetch(connection, _ENTRIES, (after, limit))


def _raw_nodes(connection: Connection, *, after: int, upto: int) -> list[Any]:
    """(complete_at, level, digest) of the tree nodes entries after..upto complete, in the
    order the walk computes them."""
    return _fetch(connection, _NODES, (after, upto))


def _read_batch(connection: Connection, after: int, limit: int) -> tuple[list[Any], list[Any]]:
    rows = _raw_entries(connection, after=after, limit=limit)
    nodes = _raw_nodes(connection, after=after, upto=rows[-1][0]) if rows else []
    return rows, nodes


def _fold(hashes: Sequence[bytes]) -> bytes:
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def _fast_batch(
    rows: Sequence[Any], nodes: Sequence[Any], walk: _Walk, anchors: Sequence[_Anchor]
) -> _Walk | None:
    """Recompute a batch with everything held in locals; None if anything differs.

    The same checks as `_careful_batch` (sequence, links, chain hashes, every stored tree node
    in order, anchored roots), written for speed: `hub audit verify` runs this on every entry.
    """
    sha256 = hashlib.sha256
    encode = _json_string
    hashes = list(walk.frontier.hashes)
    prev = walk.prev_hash
    next_anchor, last_good = walk.next_anchor, walk.last_good
    anchor_size = anchors[next_anchor].tree_size if next_anchor < len(anchors) else -1
    size = walk.frontier.size
    computed: list[tuple[int, int, str]] = []
    for seq, at, kind, body, row_prev, row_hash in rows:
        size += 1
        if seq != size or row_prev != prev:
            return None
        if len(at) == 26 and at[10] == " ":
            at = f"{at[:10]}T{at[11:]}Z"  # SQLite's stored form of a UTC time
        elif not isinstance(at, str) or at[-1:] != "Z":
            at = _rfc3339(at)
        data = (
            f'{{"at":{encode(at)},"body":{encode(body)},"kind":{encode(kind)},"seq":{seq}}}'
        ).encode()
        if sha256(CHAIN_PREFIX + prev.encode("ascii") + data).hexdigest() != row_hash:
            return None
        node = sha256(LEAF_PREFIX + data).digest()
        hashes.append(node)
        computed.append((seq, 0, node.hex()))
        level, rest = 0, seq
        while not rest & 1:
            right = hashes.pop()
            node = sha256(NODE_PREFIX + hashes.pop() + right).digest()
            hashes.append(node)
            level += 1
            rest >>= 1
            computed.append((seq, level, node.hex()))
        prev = row_hash
        while seq == anchor_size:
            if anchors[next_anchor].root != _fold(hashes):
                return None
            last_good = seq
            next_anchor += 1
            anchor_size = anchors[next_anchor].tree_size if next_anchor < len(anchors) else -1
    if computed != nodes:  # driver rows are plain tuples
        return None
    return _Walk(Frontier(size, hashes), prev, next_anchor, last_good)


def _careful_batch(
    connection: Connection, rows: Sequence[Any], walk: _Walk, anchors: Sequence[_Anchor]
) -> _Walk:
    """Walk a batch entry by entry and raise VerificationError naming the first failure."""
    frontier = Frontier(walk.frontier.size, walk.frontier.hashes)
    prev_hash, next_anchor, last_good = walk.prev_hash, walk.next_anchor, walk.last_good
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
            raise _fail(f"entry {expected} is missing (next stored entry is {seq})", entry=expected)
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
    return _Walk(frontier, prev_hash, next_anchor, last_good)


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
    while next_anchor < len(anchors) and anchors[next_anchor].tree_size == 0:
        if anchors[next_anchor].root != frontier.root():
            raise _fail(f"{anchors[next_anchor].label} has a wrong root for an empty log")
        next_anchor += 1
    connection = session.connection()
    walk = _Walk(frontier=frontier, prev_hash=prev_hash, next_anchor=next_anchor, last_good=0)
    # The next batch is read while this one is hashed: the database's share of the work then
    # overlaps Python's instead of adding to it.
    with ThreadPoolExecutor(1, thread_name_prefix="hub-audit-verify") as reader:
        ahead = reader.submit(_read_batch, connection, 0, batch)
        while True:
            rows, nodes = ahead.result()
            if not rows:
                break
            ahead = reader.submit(_read_batch, connection, rows[-1][0], batch)
            fast = _fast_batch(rows, nodes, walk, anchors)
            if fast is None:
                # Something in this batch is wrong: the careful pass walks it again entry by
                # entry and names the first failure (after the reader is off the connection).
                ahead.result()
                fast = _careful_batch(connection, rows, walk, anchors)
            walk = fast
            if progress is not None:
                progress(len(rows))
    frontier, prev_hash, next_anchor = walk.frontier, walk.prev_hash, walk.next_anchor
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
