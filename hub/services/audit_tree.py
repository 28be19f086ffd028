"""The audit log's Merkle tree in the database.

Appending leaf i stores the hashes of the subtrees it completes (one row, plus one per trailing
one bit of i: two rows per leaf on average), reading only their left siblings. A root, an
inclusion proof or a consistency proof then reads the O(log n) stored subtree hashes that
`hub.audit.merkle` names, in one query.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, TextClause, bindparam, select, text
from sqlmodel import Session, col

from hub.audit import merkle
from hub.audit.merkle import NodeId
from hub.audit.verifier import root_hash
from hub.errors import BadRequest, VerificationError
from hub.storage.models import AuditHead

HEAD_ID = 1


def _connection(session: Session | Connection) -> Connection:
    # Statements go to the connection: the ORM's execution path costs more than the query.
    return session.connection() if isinstance(session, Session) else session


# Only placeholders are written into the text; every value is a parameter.
_NODES_BY_KEY = (
    "SELECT level, idx, digest FROM (VALUES {pairs}) AS wanted "
    "JOIN audit_node ON level = wanted.column1 AND idx = wanted.column2"
)
_WITH_SIZE = " UNION ALL SELECT -1, size, NULL FROM audit_head WHERE id = :head"


@functools.lru_cache(maxsize=256)
def _nodes_statement(count: int, with_size: bool) -> TextClause:
    """Read `count` (at least one) nodes by (level, idx), a primary-key lookup each, in one
    statement of a fixed shape per count; with `with_size`, the cursor's size comes back too,
    as a row of level -1."""
    pairs = ", ".join(f"(:level_{n}, :idx_{n})" for n in range(count))
    return text(_NODES_BY_KEY.format(pairs=pairs) + (_WITH_SIZE if with_size else ""))


def _read(
    session: Session | Connection, wanted: set[NodeId], *, with_size: bool
) -> tuple[dict[NodeId, bytes], int | None]:
    params: dict[str, int] = {"head": HEAD_ID} if with_size else {}
    for n, node in enumerate(sorted(wanted)):
        params[f"level_{n}"], params[f"idx_{n}"] = node.level, node.idx
    found: dict[NodeId, bytes] = {}
    size = None
    for level, idx, digest in _connection(session).execute(
        _nodes_statement(len(wanted), with_size), params
    ):
        if level < 0:
            size = int(idx)
        else:
            found[NodeId(level, idx)] = bytes.fromhex(digest)
    return found, size


def _missing(wanted: set[NodeId], found: Mapping[NodeId, bytes]) -> None:
    missing = wanted - found.keys()
    if missing:
        node = min(missing)
        raise VerificationError(
            f"tree node at level {node.level}, index {node.idx} is missing",
            details={"level": node.level, "index": node.idx},
        )


def read_nodes(session: Session | Connection, ids: Iterable[NodeId]) -> dict[NodeId, bytes]:
    """Fetch the stored hashes of `ids` in one query (on a session or inside an append's
    connection).

    Raises VerificationError if one is missing: the tree no longer matches the log.
    """
    wanted = set(ids)
    if not wanted:
        return {}
    found, _ = _read(session, wanted, with_size=False)
    _missing(wanted, found)
    return found


def _read_within(session: Session, ids: Iterable[NodeId], tree_size: int) -> dict[NodeId, bytes]:
    """`read_nodes` after checking, in the same round trip, that the log has `tree_size`
    leaves.

    Raises BadRequest if the log is smaller, VerificationError if a node is missing.
    """
    wanted = set(ids)
    if not wanted:
        _check_tree_size(session, tree_size)
        return {}
    found, current = _read(session, wanted, with_size=True)
    _check_size_against(current or 0, tree_size)
    _missing(wanted, found)
    return found


INSERT_NODE = text(
    "INSERT INTO audit_node (level, idx, digest, complete_at) "
    "VALUES (:level, :idx, :digest, :complete_at)"
)


# The complete subtrees of a tree of n leaves (`merkle.pieces(0, n)`) end at distinct sizes, so
# one statement of a fixed shape (cached by the driver) reads them all by `complete_at`.
_READ_BY_COMPLETION = text(
    "SELECT level, idx, digest FROM audit_node WHERE complete_at IN :sizes"
).bindparams(bindparam("sizes", expanding=True))


def _read_frontier(connection: Connection, size: int, wanted: set[NodeId]) -> dict[NodeId, bytes]:
    """The hashes of `wanted`, all among the complete subtrees of the tree of `size` leaves:
    the left siblings a batch appended after leaf `size - 1` needs.

    Raises VerificationError if one is missing.
    """
    if not wanted:
        return {}
    sizes = sorted({node.complete_at for node in wanted})
    rows = connection.execute(_READ_BY_COMPLETION, {"sizes": sizes}).all()
    found = {
        NodeId(level, idx): bytes.fromhex(digest)
        for level, idx, digest in rows
        if NodeId(level, idx) in wanted
    }
    missing = wanted - found.keys()
    if missing:
        node = min(missing)
        raise VerificationError(
            f"tree node at level {node.level}, index {node.idx} is missing",
            details={"level": node.level, "index": node.idx},
        )
    return found


@dataclass(frozen=True)
class Edge:
    """The complete subtrees of a tree of `size` leaves (`merkle.pieces(0, size)`): all that
    appending the next leaves needs. A writer keeps the one its last commit produced."""

    size: int
    nodes: Mapping[NodeId, bytes]


def hash_leaves(
    connection: Connection, *, first: int, leaves: Sequence[bytes], known: Edge | None = None
) -> tuple[list[dict[str, Any]], Edge, dict[NodeId, bytes]]:
    """The rows of leaves `first`, `first + 1`, ... and of every subtree hash they complete,
    the edge of the grown tree, and every node hash used or made (enough for the root of any
    size from `first` to the grown tree's, see `root_from`). The subtrees from before come
    from `known` when it is the edge of a tree of `first` leaves (no query), else from one
    query in the caller's transaction.

    Raises VerificationError if a stored node they need is missing.
    """
    end = first + len(leaves)
    indexes = range(first, end)
    made = {node for index in indexes for node in merkle.completed_by(index)}
    before = {node for index in indexes for node in merkle.left_siblings(index)}
    before |= (
        {node for node in merkle.pieces(0, end) if node.complete_at <= first} if end else set()
    )
    before -= made
    if known is not None and known.size == first and before <= known.nodes.keys():
        nodes = {node: known.nodes[node] for node in before}
    else:
        nodes = _read_frontier(connection, first, before)
    rows = []
    for index, leaf in zip(indexes, leaves, strict=True):
        for node, digest in merkle.hash_completed(index, leaf, nodes):
            nodes[node] = digest
            rows.append(
                {
                    "level": node.level,
                    "idx": node.idx,
                    "digest": digest.hex(),
                    "complete_at": node.complete_at,
                }
            )
    edge = {node: nodes[node] for node in merkle.pieces(0, end)} if end else {}
    return rows, Edge(size=end, nodes=edge), nodes


def root_from(nodes: Mapping[NodeId, bytes], tree_size: int) -> bytes | None:
    """The tree hash of the first `tree_size` leaves from nodes in memory (as `hash_leaves`
    returns them), or None if one of its pieces is not among them."""
    if tree_size == 0:
        return root_hash([])
    pieces = merkle.pieces(0, tree_size)
    if not all(piece in nodes for piece in pieces):
        return None
    return merkle.range_hash(0, tree_size, nodes)


def add_leaves(connection: Connection, *, first: int, leaves: Sequence[bytes]) -> None:
    """Store leaves `first`, `first + 1`, ... and every subtree hash they complete, in the
    caller's transaction: one query for the subtrees from before, one executemany.

    Raises VerificationError if a left sibling the new hashes need is missing.
    """
    rows, _, _ = hash_leaves(connection, first=first, leaves=leaves)
    if rows:
        connection.execute(INSERT_NODE, rows)


def add_leaf(connection: Connection, *, index: int, leaf: bytes) -> None:
    """Store leaf `index` and every subtree hash it completes, in the caller's transaction.

    Raises VerificationError if a left sibling the new hashes need is missing.
    """
    add_leaves(connection, first=index, leaves=[leaf])


def root_on(connection: Connection, tree_size: int) -> bytes:
    """The tree hash of the first `tree_size` leaves as the caller's transaction sees them (an
    appender, before its commit), without checking the cursor.

    Raises VerificationError if a stored node is missing.
    """
    if tree_size == 0:
        return root_hash([])
    return merkle.range_hash(0, tree_size, read_nodes(connection, merkle.pieces(0, tree_size)))


def size(session: Session) -> int:
    """How many leaves the tree has, as its append cursor says."""
    # A column query, not session.get: the identity map could hand back a stale cursor.
    value = session.execute(
        select(col(AuditHead.size)).where(col(AuditHead.id) == HEAD_ID)
    ).scalar()
    return 0 if value is None else int(value)


def _check_tree_size(session: Session, tree_size: int) -> None:
    _check_size_against(size(session), tree_size)


def _check_size_against(current: int, tree_size: int) -> None:
    if not 0 <= tree_size <= current:
        raise BadRequest(
            f"tree size must be between 0 and {current} (the log's size), got {tree_size}",
            details={"tree_size": tree_size, "log_size": current},
        )


def root_at(session: Session, tree_size: int) -> bytes:
    """The Merkle tree hash of the first `tree_size` leaves.

    Raises BadRequest if the log is smaller, VerificationError if a stored node is missing.
    """
    if tree_size <= 0:
        _check_tree_size(session, tree_size)
        return root_hash([])
    pieces = merkle.pieces(0, tree_size)
    return merkle.range_hash(0, tree_size, _read_within(session, pieces, tree_size))


def leaf_at(session: Session, index: int) -> bytes:
    """The stored leaf hash of leaf `index` (entry seq index + 1).

    Raises BadRequest if there is no such leaf, VerificationError if it is missing.
    """
    if index < 0:
        raise BadRequest(f"no leaf {index} in the log", details={"index": index})
    node = NodeId(0, index)
    found, current = _read(session, {node}, with_size=True)
    if index >= (current or 0):
        raise BadRequest(f"no leaf {index} in the log", details={"index": index})
    _missing({node}, found)
    return found[node]


def inclusion_proof(session: Session, *, index: int, tree_size: int) -> list[bytes]:
    """PATH(index, D[tree_size]) of RFC 9162, from O(log n) stored hashes.

    Raises BadRequest if the tree size exceeds the log or the index is not below it.
    """
    if not 0 <= index < tree_size:
        _check_tree_size(session, tree_size)
        raise BadRequest(
            f"leaf index must be between 0 and {tree_size - 1}, got {index}",
            details={"index": index, "tree_size": tree_size},
        )
    ranges = merkle.inclusion_ranges(index, tree_size)
    nodes = _read_within(session, merkle.needed(ranges), tree_size)
    return [merkle.range_hash(start, end, nodes) for start, end in ranges]


def consistency_proof(session: Session, *, first: int, second: int) -> list[bytes]:
    """PROOF(first, D[second]) of RFC 9162, from O(log n) stored hashes.

    Raises BadRequest unless 0 <= first <= second <= the log's size.
    """
    if not 0 <= first <= second:
        _check_tree_size(session, second)
        raise BadRequest(
            f"first tree size must be between 0 and {second}, got {first}",
            details={"first": first, "second": second},
        )
    ranges = merkle.consistency_ranges(first, second)
    nodes = _read_within(session, merkle.needed(ranges), second)
    return [merkle.range_hash(start, end, nodes) for start, end in ranges]
