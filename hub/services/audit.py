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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, text
from sqlalchemy.orm import configure_mappers
from sqlmodel import Session, func, select

from hub.audit.merkle import NodeId
from hub.audit.notes import CheckpointSigner
from hub.audit.verifier import GENESIS_HASH, VerifierKey, chain_hash, entry_bytes, leaf_hash
from hub.errors import AuditUnavailable
from hub.services import audit_checkpoints, audit_tree, audit_verify
from hub.services.audit_verify import VerifyReport
from hub.storage.models import AuditEntry
from hub.storage.types import UTCDateTime

__all__ = [
    "GENESIS_HASH",
    "Pending",
    "VerifyReport",
    "Written",
    "advance_head",
    "append",
    "canonical_json",
    "commit",
    "count",
    "digest",
    "entry_data",
    "rfc3339",
    "verify",
    "write_entries",
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


# Plain statements on a connection: an append is the hot path, and the ORM's unit of work
# costs more than the database does here. Entries and nodes go in with one executemany each.
_ADVANCE_HEAD = text(
    "UPDATE audit_head SET size = size + :n WHERE id = :id RETURNING size, chain_hash"
)
_INSERT_ENTRY = text(
    "INSERT INTO audit_entry (seq, at, kind, body, prev_hash, entry_hash) "
    "VALUES (:seq, :at, :kind, :body, :prev_hash, :entry_hash)"
).bindparams(bindparam("at", type_=UTCDateTime()))
_SET_CHAIN_HEAD = text("UPDATE audit_head SET chain_hash = :chain_hash WHERE id = :id")


@dataclass(frozen=True)
class Pending:
    """An entry waiting for its place in the log: `body` is already canonical JSON text."""

    kind: str
    body: str
    at: datetime

    @classmethod
    def of(cls, *, kind: str, body: dict[str, Any], now: datetime) -> Pending:
        return cls(kind=kind, body=canonical_json(body), at=now.astimezone(UTC))


def advance_head(connection: Connection, by: int) -> tuple[int, str]:
    """Move the cursor `by` entries on; return the new size and the chain head before the move.

    Updating the cursor is an append's first write: on SQLite it takes the database's write
    lock before anything is read, on PostgreSQL the cursor row's lock; either way the next
    appender, in this process or another, waits here until this transaction ends, so sequence
    numbers never fork or skip. Raises AuditUnavailable if the cursor is missing.
    """
    row = connection.execute(_ADVANCE_HEAD, {"n": by, "id": audit_tree.HEAD_ID}).one_or_none()
    if row is None:
        raise AuditUnavailable("the audit log's cursor is missing; run `hub init`")
    return int(row[0]), str(row[1])


@dataclass(frozen=True)
class Written:
    """What one `write_entries` call added: its entries, the edge of the grown tree, and the
    node hashes it used or made (every root from before the batch to its end)."""

    entries: list[AuditEntry]
    edge: audit_tree.Edge
    nodes: Mapping[NodeId, bytes]
    # Whether the log's cursor had moved on from the caller's `known` edge and chain head:
    # another process appended in between.
    others_appended: bool = False

    @property
    def chain_head(self) -> str:
        return self.entries[-1].entry_hash

    def root(self, tree_size: int) -> bytes | None:
        """The tree hash at `tree_size` (up to the batch's end) from memory, or None."""
        return audit_tree.root_from(self.nodes, tree_size)


@dataclass(frozen=True)
class _Batch:
    """A batch laid out at its place in the log, ready to write."""

    entries: list[AuditEntry]
    rows: list[dict[str, Any]]
    nodes: list[dict[str, Any]]
    edge: audit_tree.Edge
    hashes: dict[NodeId, bytes]
    chain_head: str

    def written(self, *, others_appended: bool) -> Written:
        return Written(
            entries=self.entries,
            edge=self.edge,
            nodes=self.hashes,
            others_appended=others_appended,
        )


def _lay_out(
    connection: Connection,
    pending: Sequence[Pending],
    *,
    first: int,
    prev_hash: str,
    known: audit_tree.Edge | None,
) -> _Batch:
    entries: list[AuditEntry] = []
    leaves: list[bytes] = []
    rows: list[dict[str, Any]] = []
    for seq, item in enumerate(pending, start=first):
        data = entry_bytes(seq=seq, kind=item.kind, at=rfc3339(item.at), body=item.body)
        link = chain_hash(prev_hash=prev_hash, entry=data)
        rows.append(
            {
                "seq": seq,
                "at": item.at,
                "kind": item.kind,
                "body": item.body,
                "prev_hash": prev_hash,
                "entry_hash": link,
            }
        )
        # Built without validation: every field was computed just above, and validating
        # costs more than the rest of the append.
        entries.append(
            AuditEntry.model_construct(
                seq=seq,
                at=item.at,
                kind=item.kind,
                body=item.body,
                prev_hash=prev_hash,
                entry_hash=link,
            )
        )
        leaves.append(leaf_hash(data))
        prev_hash = link
    nodes, edge, hashes = audit_tree.hash_leaves(
        connection, first=first - 1, leaves=leaves, known=known
    )
    return _Batch(entries, rows, nodes, edge, hashes, prev_hash)


def write_entries(
    connection: Connection,
    pending: Sequence[Pending],
    *,
    known: audit_tree.Edge | None = None,
    chain_head: str | None = None,
    conditional: bool = True,
) -> Written:
    """Give `pending` the next sequence numbers, in order, and write them, their chain links,
    their tree nodes and the new cursor, inside the caller's transaction.

    `known` and `chain_head` are the edge and chain head a previous call returned: when no one
    has appended since (the cursor says so), the tree's subtrees are not read again, and on
    PostgreSQL, with `conditional`, the whole batch goes in one statement that moves the cursor
    only if it is still where they say. A caller that just saw another process append passes
    `conditional=False`, since that statement would then most likely be refused and sent for
    nothing. Nothing is durable until the caller commits. Raises ValueError for an empty
    batch, AuditUnavailable if the cursor is missing, VerificationError if a stored tree node
    the new ones need is missing; database errors propagate.
    """
    if not pending:
        raise ValueError("nothing to append")
    # `model_construct` below skips the step that sets up the ORM's mappings on first use.
    configure_mappers()
    postgresql = connection.dialect.name == "postgresql"
    if postgresql and conditional and known is not None and chain_head is not None:
        batch = _lay_out(
            connection, pending, first=known.size + 1, prev_hash=chain_head, known=known
        )
        if _write_if_head_is(connection, batch, size=known.size, chain_head=chain_head):
            return batch.written(others_appended=False)
        # Another process appended since: take the cursor's lock and lay the batch out again.
    size, prev_hash = advance_head(connection, len(pending))
    others_appended = known is not None and (
        size - len(pending) != known.size or prev_hash != chain_head
    )
    batch = _lay_out(
        connection, pending, first=size - len(pending) + 1, prev_hash=prev_hash, known=known
    )
    if postgresql:
        _write_in_one_statement(connection, batch.rows, batch.nodes, batch.chain_head)
    else:
        connection.execute(_INSERT_ENTRY, batch.rows)
        connection.execute(audit_tree.INSERT_NODE, batch.nodes)
        connection.execute(
            _SET_CHAIN_HEAD, {"chain_hash": batch.chain_head, "id": audit_tree.HEAD_ID}
        )
    return batch.written(others_appended=others_appended)


_ENTRY_COLUMNS = ("seq", "at", "kind", "body", "prev_hash", "entry_hash")
_NODE_COLUMNS = ("level", "idx", "digest", "complete_at")
_ONE_STATEMENT = (
    "WITH new_entries AS (INSERT INTO audit_entry (seq, at, kind, body, prev_hash, entry_hash) "
    "VALUES {entries}), new_nodes AS (INSERT INTO audit_node (level, idx, digest, complete_at) "
    "VALUES {nodes}) UPDATE audit_head SET chain_hash = %s WHERE id = %s"
)
# The same, moving the cursor too, but only if it is where the writer last left it: the rows
# go in only when the cursor moved (0 rows back means another process appended meanwhile and
# nothing was written). Under the cursor row's lock, like `advance_head`.
_IF_HEAD_IS = (
    "WITH head AS (UPDATE audit_head SET size = size + %s, chain_hash = %s "
    "WHERE id = %s AND size = %s AND chain_hash = %s RETURNING size), "
    "new_entries AS (INSERT INTO audit_entry (seq, at, kind, body, prev_hash, entry_hash) "
    "SELECT * FROM (VALUES {entries}) AS rows WHERE EXISTS (SELECT FROM head)), "
    "new_nodes AS (INSERT INTO audit_node (level, idx, digest, complete_at) "
    "SELECT * FROM (VALUES {nodes}) AS rows WHERE EXISTS (SELECT FROM head)) "
    "SELECT size FROM head"
)


def _values(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], typed: Sequence[str] = ()
) -> tuple[str, list[Any]]:
    # Only placeholders go into the text; every value is a parameter.
    row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    if typed:
        row = "(" + ", ".join(f"%s::{kind}" for kind in typed) + ")"
    params = [values[column] for values in rows for column in columns]
    return ", ".join([row] * len(rows)), params


def _write_in_one_statement(
    connection: Connection,
    entries: Sequence[dict[str, Any]],
    nodes: Sequence[dict[str, Any]],
    chain_head: str,
) -> None:
    # PostgreSQL runs data-modifying WITH clauses as one statement: entries, nodes and the
    # chain head travel in one round trip instead of three.
    entry_values, entry_params = _values(entries, _ENTRY_COLUMNS)
    node_values, node_params = _values(nodes, _NODE_COLUMNS)
    statement = _ONE_STATEMENT.format(entries=entry_values, nodes=node_values)
    params = [*entry_params, *node_params, chain_head, audit_tree.HEAD_ID]
    connection.exec_driver_sql(statement, tuple(params))


# VALUES in a SELECT does not take its column types from the table, so they are spelled out.
_ENTRY_TYPES = ("bigint", "timestamptz", "text", "text", "text", "text")
_NODE_TYPES = ("int", "bigint", "text", "bigint")


def _write_if_head_is(connection: Connection, batch: _Batch, *, size: int, chain_head: str) -> bool:
    entry_values, entry_params = _values(batch.rows, _ENTRY_COLUMNS, _ENTRY_TYPES)
    node_values, node_params = _values(batch.nodes, _NODE_COLUMNS, _NODE_TYPES)
    statement = _IF_HEAD_IS.format(entries=entry_values, nodes=node_values)
    params = [
        len(batch.rows),
        batch.chain_head,
        audit_tree.HEAD_ID,
        size,
        chain_head,
        *entry_params,
        *node_params,
    ]
    return connection.exec_driver_sql(statement, tuple(params)).first() is not None


def append(
    *,
    session: Session,
    kind: str,
    body: dict[str, Any],
    now: datetime,
    signer: CheckpointSigner | None = None,
    checkpoint_every: int | None = None,
) -> AuditEntry:
    """Add one entry at the head of the log, inside the caller's transaction.

    For entries that must be atomic with the change they record (a case transition and its
    entry); the disclosure hot path uses `audit_writer`, which batches concurrent appends.
    The caller commits; until then the entry is not durable and nothing may be disclosed.
    The returned entry is not added to the session (it is written directly).
    With a `signer`, every `checkpoint_every`-th entry (default
    `audit_checkpoints.CHECKPOINT_EVERY`) also gets a signed checkpoint in the same
    transaction. Raises AuditUnavailable if the head cannot be read or the entry cannot be
    written.
    """
    every = checkpoint_every or audit_checkpoints.CHECKPOINT_EVERY
    try:
        connection = session.connection()
        (entry,) = write_entries(connection, [Pending.of(kind=kind, body=body, now=now)]).entries
        if signer is not None and entry.seq % every == 0:
            audit_checkpoints.make(session=session, signer=signer, now=now, tree_size=entry.seq)
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
    batch: int = audit_verify.BATCH,
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
