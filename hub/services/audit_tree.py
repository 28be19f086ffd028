"""The audit log's Merkle tree in the database.

Appending leaf i stores the hashes of the subtrees it completes (one row, plus one per trailing
one bit of i: two rows per leaf on average), reading only their left siblings. A root, an
inclusion proof or a consistency proof then reads the O(log n) stored subtree hashes that
`hub.audit.merkle` names, in one query.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, or_, select, text
from sqlmodel import Session, col

from hub.audit import merkle
from hub.audit.merkle import NodeId
from hub.audit.verifier import root_hash
from hub.errors import BadRequest, VerificationError
from hub.storage.models import AuditHead, AuditNode

HEAD_ID = 1


def read_nodes(session: Session | Connection, ids: Iterable[NodeId]) -> dict[NodeId, bytes]:
    """Fetch the stored hashes of `ids` in one query (on a session or inside an append's
    connection).

    Raises VerificationError if one is missing: the tree no longer matches the log.
    """
    wanted = set(ids)
    if not wanted:
        return {}
    by_level: dict[int, list[int]] = defaultdict(list)
    for node in wanted:
        by_level[node.level].append(node.idx)
    condition = or_(
        *(
            and_(col(AuditNode.level) == level, col(AuditNode.idx).in_(indexes))
            for level, indexes in by_level.items()
        )
    )
    rows = session.execute(
        select(col(AuditNode.level), col(AuditNode.idx), col(AuditNode.digest)).where(condition)
    ).all()
    found = {NodeId(level, idx): bytes.fromhex(digest) for level, idx, digest in rows}
    missing = wanted - found.keys()
    if missing:
        node = min(missing)
        raise VerificationError(
            f"tree node at level {node.level}, index {node.idx} is missing",
            details={"level": node.level, "index": node.idx},
        )
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
) -> tuple[list[dict[str, Any]], Edge]:
    """The rows of leaves `first`, `first + 1`, ... and of every subtree hash they complete,
    and the edge of the grown tree. The subtrees from before come from `known` when it is the
    edge of a tree of `first` leaves (no query), else from one query in the caller's
    transaction.

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
    return rows, Edge(size=end, nodes=edge)


def add_leaves(connection: Connection, *, first: int, leaves: Sequence[bytes]) -> None:
    """Store leaves `first`, `first + 1`, ... and every subtree hash they complete, in the
    caller's transaction: one query for the subtrees from before, one executemany.

    Raises VerificationError if a left sibling the new hashes need is missing.
    """
    rows, _ = hash_leaves(connection, first=first, leaves=leaves)
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
    current = size(session)
    if not 0 <= tree_size <= current:
        raise BadRequest(
            f"tree size must be between 0 and {current} (the log's size), got {tree_size}",
            details={"tree_size": tree_size, "log_size": current},
        )


def root_at(session: Session, tree_size: int) -> bytes:
    """The Merkle tree hash of the first `tree_size` leaves.

    Raises BadRequest if the log is smaller, VerificationError if a stored node is missing.
    """
    _check_tree_size(session, tree_size)
    if tree_size == 0:
        return root_hash([])
    return merkle.range_hash(0, tree_size, read_nodes(session, merkle.pieces(0, tree_size)))


def leaf_at(session: Session, index: int) -> bytes:
    """The stored leaf hash of leaf `index` (entry seq index + 1).

    Raises BadRequest if there is no such leaf, VerificationError if it is missing.
    """
    if not 0 <= index < size(session):
        raise BadRequest(f"no leaf {index} in the log", details={"index": index})
    return read_nodes(session, [NodeId(0, index)])[NodeId(0, index)]


def inclusion_proof(session: Session, *, index: int, tree_size: int) -> list[bytes]:
    """PATH(index, D[tree_size]) of RFC 9162, from O(log n) stored hashes.

    Raises BadRequest if the tree size exceeds the log or the index is not below it.
    """
    _check_tree_size(session, tree_size)
    if not 0 <= index < tree_size:
        raise BadRequest(
            f"leaf index must be between 0 and {tree_size - 1}, got {index}",
            details={"index": index, "tree_size": tree_size},
        )
    ranges = merkle.inclusion_ranges(index, tree_size)
    nodes = read_nodes(session, merkle.needed(ranges))
    return [merkle.range_hash(start, end, nodes) for start, end in ranges]


def consistency_proof(session: Session, *, first: int, second: int) -> list[bytes]:
    """PROOF(first, D[second]) of RFC 9162, from O(log n) stored hashes.

    Raises BadRequest unless 0 <= first <= second <= the log's size.
    """
    _check_tree_size(session, second)
    if not 0 <= first <= second:
        raise BadRequest(
            f"first tree size must be between 0 and {second}, got {first}",
            details={"first": first, "second": second},
        )
    ranges = merkle.consistency_ranges(first, second)
    nodes = read_nodes(session, merkle.needed(ranges))
    return [merkle.range_hash(start, end, nodes) for start, end in ranges]
