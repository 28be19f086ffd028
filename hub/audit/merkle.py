"""Which stored subtree hashes a proof or a root needs, and how to combine them.

The log stores the hash of every *complete* subtree: node (level, index) covers leaves
[index * 2**level, (index + 1) * 2**level). Leaf i is node (0, i); a node is written once, when
its last leaf is appended, and never changes. Every range the RFC 9162 proof recursions visit
starts on a multiple of a power of two at least as large as the range, so it splits into at
most log2(n) stored nodes (the binary digits of its size, largest first), and the ranges of one
proof share those nodes: a root, an inclusion proof or a consistency proof reads O(log n)
stored hashes, in one query.

Everything here is pure: callers fetch the `NodeId`s that `needed_*` name and pass them back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from hub.audit.verifier import node_hash


class NodeId(NamedTuple):
    """Subtree `idx` of height `level`: leaves [idx * 2**level, (idx + 1) * 2**level)."""

    level: int
    idx: int

    @property
    def complete_at(self) -> int:
        """The tree size at which this subtree's last leaf is appended."""
        return (self.idx + 1) << self.level


Range = tuple[int, int]  # [start, end) in leaf indexes


def _split(size: int) -> int:
    # RFC 9162: k is the largest power of two smaller than n (n > 1).
    return 1 << ((size - 1).bit_length() - 1)


def pieces(start: int, end: int) -> list[NodeId]:
    """The stored nodes that make up leaves [start, end), largest first.

    Raises ValueError if the range is empty or not aligned as the proof recursions align it.
    """
    if not 0 <= start < end:
        raise ValueError(f"empty leaf range [{start}, {end})")
    result = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start % (1 << level):
            raise ValueError(f"leaf range [{start}, {end}) is not aligned to a subtree")
        result.append(NodeId(level, start >> level))
        start += 1 << level
    return result


def range_hash(start: int, end: int, nodes: Mapping[NodeId, bytes]) -> bytes:
    """MTH of leaves [start, end) from its stored pieces: H(first, H(second, ...)).

    Raises KeyError if a piece is missing from `nodes`, ValueError as `pieces` does.
    """
    parts = pieces(start, end)
    result = nodes[parts[-1]]
    for part in reversed(parts[:-1]):
        result = node_hash(nodes[part], result)
    return result


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The ranges whose hashes form PATH(index, D[size]) (RFC 9162 2.1.3.1), leaf end first.

    Raises ValueError if `index` is not a leaf of a tree of `size`.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    ranges: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[Range]:
    """The ranges whose hashes form PROOF(first, D[second]) (RFC 9162 2.1.4.1), in order.

    Empty when `first` is 0 or equals `second`. Raises ValueError unless 0 <= first <= second.
    """
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from tree size {first} to {second}")
    if first in (0, second):
        return []
    ranges: list[Range] = []
    start, end, m, whole = 0, second, first, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, m, whole = start + k, m - k, False
    if not whole:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def needed(ranges: Iterable[Range]) -> set[NodeId]:
    """Every stored node the given ranges are made of."""
    return {node for start, end in ranges for node in pieces(start, end)}


def completed_by(index: int) -> list[NodeId]:
    """The nodes that appending leaf `index` completes: the leaf itself, then each parent
    whose right-most leaf it is, lowest first."""
    nodes = [NodeId(0, index)]
    size = index + 1
    level = 1
    while size % (1 << level) == 0:
        nodes.append(NodeId(level, (size >> level) - 1))
        level += 1
    return nodes


def left_siblings(index: int) -> list[NodeId]:
    """The stored nodes that appending leaf `index` needs to hash its completed parents."""
    return [NodeId(node.level - 1, 2 * node.idx) for node in completed_by(index)[1:]]


def hash_completed(
    index: int, leaf: bytes, nodes: Mapping[NodeId, bytes]
) -> list[tuple[NodeId, bytes]]:
    """The hashes of the nodes leaf `index` completes, given its `left_siblings` in `nodes`.

    Raises KeyError if a left sibling is missing.
    """
    completed = completed_by(index)
    result = [(completed[0], leaf)]
    current = leaf
    for node in completed[1:]:
        current = node_hash(nodes[NodeId(node.level - 1, 2 * node.idx)], current)
        result.append((node, current))
    return result
