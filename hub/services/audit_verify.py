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
import contextlib
import functools
import hashlib
import json
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, select
from sqlmodel import Session, col, func

from hub.audit.verifier import (
    CHAIN_PREFIX,
    GENESIS_HASH,
    HASH_SIZE,
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


# Entries per batch: the fewer batches, the fewer round trips and thread hand-overs; 20,000
# entries' columns are a few megabytes of text.
BATCH = 20_000


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


# The careful pass reads entries as rows, with the driver's own cursor (one statement per
# backend: their parameter styles differ). PostgreSQL formats the time in its canonical form;
# SQLite returns the text it stores.
_ENTRIES = {
    "sqlite": "SELECT seq, at, kind, body, prev_hash, entry_hash FROM audit_entry "
    "WHERE seq > :after ORDER BY seq LIMIT :limit",
    "postgresql": "SELECT seq, to_char(at AT TIME ZONE 'UTC', "
    '\'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\'), kind, body, prev_hash, entry_hash '
    "FROM audit_entry WHERE seq > %(after)s ORDER BY seq LIMIT %(limit)s",
}

# The fast pass reads a batch as one row: each column of its entries joined by _SEPARATOR, in
# order, and the count that shows no value held a separator itself. Making a Python object per
# value cost more than all the hashing; the database joins them, in C, while the previous batch
# is hashed. The aggregates take the rows in the order the subquery sorts them, as both
# databases do; were that ever not so, the batch would differ and go to the careful pass.
# SQLite's times come as stored ("2025-01-31 12:00:00.000000") and are rewritten in Python.
_SEPARATOR = "\x1f"
_CHUNK = {
    "sqlite": "SELECT count(*), min(seq), max(seq), group_concat(at, :sep), "
    "group_concat(kind, :sep), group_concat(body, :sep), group_concat(prev_hash, :sep), "
    "group_concat(entry_hash, :sep) FROM (SELECT seq, at, kind, body, prev_hash, entry_hash "
    "FROM audit_entry WHERE seq > :after ORDER BY seq LIMIT :limit)",
    "postgresql": "SELECT count(*), min(seq), max(seq), string_agg(to_char(at AT TIME ZONE "
    "'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), %(sep)s), string_agg(kind, %(sep)s), "
    "string_agg(body, %(sep)s), string_agg(prev_hash, %(sep)s), string_agg(entry_hash, %(sep)s) "
    "FROM (SELECT seq, at, kind, body, prev_hash, entry_hash FROM audit_entry "
    "WHERE seq > %(after)s ORDER BY seq LIMIT %(limit)s) AS batch",
}
# SQLAlchemy stores a time on SQLite as 26 characters, "YYYY-MM-DD HH:MM:SS.ffffff".
_SQLITE_TIME = 26


def _sqlite_times(joined: str, n: int) -> str | None:
    """The hashed form of `n` stored SQLite times joined by _SEPARATOR, rewritten all at once:
    "2025-01-31 12:00:00.000000" becomes "2025-01-31T12:00:00.000000Z". None unless every one
    has the stored form's length and its one space where the date ends."""
    width = _SQLITE_TIME + 1
    if (
        len(joined) != width * n - 1
        or joined[_SQLITE_TIME::width] != _SEPARATOR * (n - 1)
        or joined[10::width] != " " * n
        or joined.count(" ") != n
    ):
        return None
    return joined.replace(" ", "T").replace(_SEPARATOR, "Z" + _SEPARATOR) + "Z"


# The tree nodes a batch completes, level by level (the order the fast pass computes them in),
# each level's read through the primary key in index order, so nothing is sorted: how many,
# whether every one is stored under the tree size its place gives, and their digests joined by
# commas. A second statement counts every node stored under the batch's tree sizes, so no stray
# node hides outside the levels read (kept apart: together, PostgreSQL plans the union as a
# parallel query, whose start-up cost more than the reads).
_LEVEL = (
    "SELECT {level}, count(*), {every}(complete_at = ({idx} + 1) * {size}), {join} "
    "FROM (SELECT idx, complete_at, digest FROM audit_node WHERE level = {level} "
    "AND idx >= {p} AND idx < {p} ORDER BY idx) AS level_{level}"
)
_ALL_NODES = {
    "sqlite": "SELECT count(*) FROM audit_node WHERE complete_at > ? AND complete_at <= ?",
    "postgresql": "SELECT count(*) FROM audit_node WHERE complete_at > %s AND complete_at <= %s",
}
_DIALECT = {
    "sqlite": {"every": "min", "idx": "idx", "join": "group_concat(digest, ',')", "p": "?"},
    "postgresql": {
        "every": "bool_and",
        "idx": "idx::bigint",
        "join": "string_agg(digest, ',')",
        "p": "%s",
    },
}


@functools.lru_cache(maxsize=256)
def _nodes_statement(dialect: str, levels: int) -> str:
    # Only level numbers (and their powers of two) are written into the text; the index
    # ranges are parameters.
    words = _DIALECT[dialect]
    parts = [_LEVEL.format(level=level, size=1 << level, **words) for level in range(levels)]
    return " UNION ALL ".join(parts)


def _fetch(connection: Connection, statement: str, params: Any) -> list[Any]:
    # The driver's own cursor and tuples: the column types' processing cost more than hashing.
    cursor = connection.connection.cursor()
    try:
        cursor.execute(statement, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _raw_entries(connection: Connection, *, after: int, limit: int) -> list[Any]:
    """The next entries as (seq, at text, kind, body, prev_hash, entry_hash)."""
    statement = _ENTRIES[connection.dialect.name]
    return _fetch(connection, statement, {"after": after, "limit": limit})


@dataclass(frozen=True)
class _Chunk:
    """One batch as the fast pass reads it (see `_CHUNK` and `_LEVEL`)."""

    count: int
    first: int
    last: int
    columns: tuple[str, str, str, str, str]  # at, kind, body, prev_hash, entry_hash
    levels: list[tuple[int, bool, str]]  # per level: nodes, all in place, digests joined
    nodes: int  # every node whose tree size is in the batch


def _read_chunk(connection: Connection, after: int, limit: int) -> _Chunk | None:
    """The entries after `after` (at most `limit`) and the nodes they complete; None at the end."""
    dialect = connection.dialect.name
    ((count, first, last, *columns),) = _fetch(
        connection, _CHUNK[dialect], {"after": after, "limit": limit, "sep": _SEPARATOR}
    )
    if not count:
        return None
    after, last = int(after), int(last)
    levels = last.bit_length()
    while levels and last >> (levels - 1) == after >> (levels - 1):
        levels -= 1  # no node of this level ends in the batch
    params: list[int] = []
    for level in range(levels):
        params += [after >> level, last >> level]
    by_level = {
        int(row[0]): row for row in _fetch(connection, _nodes_statement(dialect, levels), params)
    }
    ((nodes,),) = _fetch(connection, _ALL_NODES[dialect], (after, last))
    return _Chunk(
        count=int(count),
        first=int(first),
        last=last,
        columns=tuple(value or "" for value in columns),  # type: ignore[arg-type]
        levels=[
            (int(by_level[level][1]), bool(by_level[level][2]), by_level[level][3] or "")
            for level in range(levels)
        ],
        nodes=int(nodes),
    )


def _fold(hashes: Sequence[bytes]) -> bytes:
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


class _Levels:
    """The nodes a batch of leaves completes, computed level by level, on top of the frontier
    of the tree before it (`old` leaves).

    `levels[L]` holds the level-L nodes whose last leaf is in the batch, in index order: the
    first has index `old >> L`. A node left of those is a piece of the old tree.
    """

    def __init__(self, frontier: Frontier, leaves: list[bytes]) -> None:
        sha256 = hashlib.sha256
        old = frontier.size
        # The old tree's pieces, by level: one per one bit of its size, largest first.
        bits = [level for level in range(old.bit_length() - 1, -1, -1) if old >> level & 1]
        self._old, self._left = old, dict(zip(bits, frontier.hashes, strict=True))
        self.levels = [leaves]
        level, current = 0, leaves
        while current:
            # An odd first index means the first node's left sibling is a piece of the old tree.
            work = [self._left[level], *current] if (old >> level) & 1 else current
            current = [
                sha256(NODE_PREFIX + left + right).digest()
                for left, right in zip(work[0::2], work[1::2], strict=False)
            ]
            self.levels.append(current)
            level += 1

    def node(self, level: int, index: int) -> bytes:
        first = self._old >> level
        return self.levels[level][index - first] if index >= first else self._left[level]

    def pieces(self, size: int) -> list[bytes]:
        """The frontier of the tree of `size` leaves (old < size <= old + batch)."""
        return [
            self.node(level, (size >> level) - 1)
            for level in range(size.bit_length() - 1, -1, -1)
            if size >> level & 1
        ]


def _fast_chunk(
    chunk: _Chunk, walk: _Walk, anchors: Sequence[_Anchor], *, sqlite: bool
) -> _Walk | None:
    """Recompute a batch column by column; None if anything differs from what is stored.

    The same checks as `_careful_batch` (sequence, links, chain hashes, every stored tree node,
    anchored roots), made on whole columns at once: `hub audit verify` runs this on every
    entry. Whatever this cannot tell apart it reports as a difference.
    """
    sha256 = hashlib.sha256
    encode = _json_string
    size, n = walk.frontier.size, chunk.count
    # Sequence numbers are the key: unique, so the smallest and largest fix all of them.
    if chunk.first != size + 1 or chunk.last != size + n:
        return None
    times, kinds, bodies, prevs, links = chunk.columns
    if sqlite:
        rewritten = _sqlite_times(times, n)
        if rewritten is None:
            return None
        times = rewritten
    ats, kinds_, bodies_ = (
        times.split(_SEPARATOR),
        kinds.split(_SEPARATOR),
        bodies.split(_SEPARATOR),
    )
    previous = prevs.encode().split(_SEPARATOR.encode())
    if not len(ats) == len(kinds_) == len(bodies_) == len(previous) == n:
        return None  # a value held the separator
    # The entry encoding of `entry_bytes`, and the chain link over the stored previous link.
    data = [
        f'{{"at":{encode(at)},"body":{encode(body)},"kind":{encode(kind)},"seq":{seq}}}'.encode()
        for seq, at, kind, body in zip(
            range(size + 1, size + n + 1), ats, kinds_, bodies_, strict=True
        )
    ]
    chain = b"".join(
        [
            sha256(CHAIN_PREFIX + prev + entry).digest()
            for prev, entry in zip(previous, data, strict=True)
        ]
    ).hex(_SEPARATOR, HASH_SIZE)
    # Every link is the one computed, so each is 64 characters long; the stored previous links
    # must then be the last link before the batch followed by every link but the batch's last.
    if chain != links or prevs != f"{walk.prev_hash}{_SEPARATOR}{links}"[: len(links)]:
        return None
    tree = _Levels(walk.frontier, [sha256(LEAF_PREFIX + entry).digest() for entry in data])
    made = [level for level in tree.levels if level]
    if chunk.nodes != sum(map(len, made)) or len(made) != len(chunk.levels):
        return None
    for computed_level, (stored, in_place, digests) in zip(made, chunk.levels, strict=True):
        # Joined with separators, equal strings mean equal digests one by one.
        joined = b"".join(computed_level).hex(",", HASH_SIZE)
        if stored != len(computed_level) or not in_place or joined != digests:
            return None
    next_anchor, last_good = walk.next_anchor, walk.last_good
    while next_anchor < len(anchors) and anchors[next_anchor].tree_size <= chunk.last:
        anchor = anchors[next_anchor]
        if anchor.root != _fold(tree.pieces(anchor.tree_size)):
            return None
        last_good = anchor.tree_size
        next_anchor += 1
    end = size + n
    return _Walk(Frontier(end, tree.pieces(end)), links[-64:], next_anchor, last_good)


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


# While a walk runs, the thread switch interval is shortened: the reader thread needs the GIL
# back at every network read or database step of the next batch, and the hashing thread,
# which holds it in between, would otherwise keep it for up to 5 ms each time. Walks may
# overlap (API requests), so the first to start saves the interval and the last restores it.
_PROMPT_SWITCH_SECONDS = 0.0005
_switches = threading.Lock()
_walks = 0
_saved_interval = 0.0


@contextlib.contextmanager
def _prompt_thread_switches() -> Iterator[None]:
    global _walks, _saved_interval
    with _switches:
        if _walks == 0:
            _saved_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(_saved_interval, _PROMPT_SWITCH_SECONDS))
        _walks += 1
    try:
        yield
    finally:
        with _switches:
            _walks -= 1
            if _walks == 0:
                sys.setswitchinterval(_saved_interval)


def verify(
    *,
    session: Session,
    keys: Sequence[VerifierKey] = (),
    origin: str | None = None,
    held: Sequence[str] = (),
    batch: int = BATCH,
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
    sqlite = connection.dialect.name == "sqlite"
    walk = _Walk(frontier=frontier, prev_hash=prev_hash, next_anchor=next_anchor, last_good=0)
    # The next batch is read while this one is hashed: the database's share of the work then
    # overlaps Python's instead of adding to it.
    with (
        _prompt_thread_switches(),
        ThreadPoolExecutor(1, thread_name_prefix="hub-audit-verify") as reader,
    ):
        ahead = reader.submit(_read_chunk, connection, 0, batch)
        while True:
            chunk = ahead.result()
            if chunk is None:
                break
            ahead = reader.submit(_read_chunk, connection, chunk.last, batch)
            fast = _fast_chunk(chunk, walk, anchors, sqlite=sqlite)
            if fast is None:
                # Something in this batch is wrong: the careful pass reads it again as rows and
                # walks it entry by entry to name the first failure (once the reader is off the
                # connection).
                ahead.result()
                rows = _raw_entries(connection, after=walk.frontier.size, limit=batch)
                fast = _careful_batch(connection, rows, walk, anchors)
                if fast.frontier.size != chunk.last:
                    ahead = reader.submit(_read_chunk, connection, fast.frontier.size, batch)
            walk = fast
            if progress is not None:
                progress(chunk.count)
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
