"""Property tests: proofs built from the stored subtree hashes verify for every size and index
up to a few hundred leaves, and stop verifying when any byte of them changes."""

from __future__ import annotations

import functools

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.audit import merkle
from hub.audit.merkle import NodeId
from hub.audit.verifier import (
    VerificationFailed,
    leaf_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

EXHAUSTIVE = 300
LARGEST = 2048


def _leaf(i: int) -> bytes:
    return leaf_hash(f"entry {i}".encode())


@functools.cache
def _tree() -> tuple[list[bytes], dict[NodeId, bytes]]:
    leaves = [_leaf(i) for i in range(LARGEST)]
    nodes: dict[NodeId, bytes] = {}
    for index, leaf in enumerate(leaves):
        nodes.update(merkle.hash_completed(index, leaf, nodes))
    return leaves, nodes


def _inclusion(index: int, size: int) -> list[bytes]:
    _, nodes = _tree()
    return [merkle.range_hash(a, b, nodes) for a, b in merkle.inclusion_ranges(index, size)]


def _consistency(first: int, second: int) -> list[bytes]:
    _, nodes = _tree()
    return [merkle.range_hash(a, b, nodes) for a, b in merkle.consistency_ranges(first, second)]


@functools.cache
def _root(size: int) -> bytes:
    return root_hash(_tree()[0][:size])


def test_every_inclusion_proof_verifies_up_to_a_few_hundred_leaves() -> None:
    leaves, _ = _tree()
    for size in range(1, EXHAUSTIVE + 1):
        for index in range(size):
            verify_inclusion(
                index=index,
                tree_size=size,
                leaf=leaves[index],
                proof=_inclusion(index, size),
                root=_root(size),
            )


def test_every_consistency_proof_verifies_up_to_a_few_hundred_leaves() -> None:
    for second in range(0, EXHAUSTIVE + 1):
        for first in range(0, second + 1):
            verify_consistency(
                first=first,
                second=second,
                first_root=_root(first),
                second_root=_root(second),
                proof=_consistency(first, second),
            )


def test_proofs_read_at_most_two_nodes_per_level() -> None:
    for size in (1, 2, 3, 1000, 1023, 1024, 1025, 2047):
        height = max(size - 1, 1).bit_length()
        for index in range(0, size, max(size // 17, 1)):
            assert len(merkle.needed(merkle.inclusion_ranges(index, size))) <= 2 * height
        for first in range(1, size, max(size // 17, 1)):
            assert len(merkle.needed(merkle.consistency_ranges(first, size))) <= 2 * height


def _flip(value: bytes, position: int, mask: int) -> bytes:
    changed = bytearray(value)
    changed[position % len(changed)] ^= mask
    return bytes(changed)


@settings(max_examples=400, deadline=None)
@given(
    data=st.data(),
    size=st.integers(1, LARGEST),
    position=st.integers(0, 31),
    mask=st.integers(1, 255),
)
def test_any_changed_byte_breaks_an_inclusion_proof(
    data: st.DataObject, size: int, position: int, mask: int
) -> None:
    leaves, _ = _tree()
    index = data.draw(st.integers(0, size - 1))
    proof, leaf, root = _inclusion(index, size), leaves[index], _root(size)
    target = data.draw(st.integers(0, len(proof) + 1))
    if target < len(proof):
        proof[target] = _flip(proof[target], position, mask)
    elif target == len(proof):
        leaf = _flip(leaf, position, mask)
    else:
        root = _flip(root, position, mask)
    try:
        verify_inclusion(index=index, tree_size=size, leaf=leaf, proof=proof, root=root)
    except VerificationFailed:
        return
    raise AssertionError(f"altered proof verified: index {index}, size {size}, part {target}")


@settings(max_examples=400, deadline=None)
@given(
    data=st.data(),
    second=st.integers(2, LARGEST),
    position=st.integers(0, 31),
    mask=st.integers(1, 255),
)
def test_any_changed_byte_breaks_a_consistency_proof(
    data: st.DataObject, second: int, position: int, mask: int
) -> None:
    first = data.draw(st.integers(1, second - 1))
    proof, first_root, second_root = _consistency(first, second), _root(first), _root(second)
    target = data.draw(st.integers(0, len(proof) + 1))
    if target < len(proof):
        proof[target] = _flip(proof[target], position, mask)
    elif target == len(proof):
        first_root = _flip(first_root, position, mask)
    else:
        second_root = _flip(second_root, position, mask)
    try:
        verify_consistency(
            first=first,
            second=second,
            first_root=first_root,
            second_root=second_root,
            proof=proof,
        )
    except VerificationFailed:
        return
    raise AssertionError(f"altered proof verified: {first} -> {second}, part {target}")


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    size=st.integers(1, 600),
    entry=st.binary(min_size=1, max_size=64),
    position=st.integers(0, 63),
    mask=st.integers(1, 255),
)
def test_a_changed_entry_is_no_longer_included(
    data: st.DataObject, size: int, entry: bytes, position: int, mask: int
) -> None:
    index = data.draw(st.integers(0, size - 1))
    leaves = [*_tree()[0][:size]]
    leaves[index] = leaf_hash(entry)
    nodes: dict[NodeId, bytes] = {}
    for i, leaf in enumerate(leaves):
        nodes.update(merkle.hash_completed(i, leaf, nodes))
    proof = [merkle.range_hash(a, b, nodes) for a, b in merkle.inclusion_ranges(index, size)]
    root = merkle.range_hash(0, size, nodes)
    verify_inclusion(index=index, tree_size=size, leaf=leaf_hash(entry), proof=proof, root=root)
    altered = leaf_hash(_flip(entry, position, mask))
    try:
        verify_inclusion(index=index, tree_size=size, leaf=altered, proof=proof, root=root)
    except VerificationFailed:
        return
    raise AssertionError("an altered entry verified")


@given(size=st.integers(0, LARGEST), first=st.integers(0, LARGEST))
def test_wrong_sizes_give_wrong_length_or_mismatch(size: int, first: int) -> None:
    # A proof for one pair of sizes never verifies as a proof for a different pair.
    if not 0 < first < size:
        return
    proof = _consistency(first, size)
    other = first + 1 if first + 1 < size else first - 1
    if other == 0 or other == first:
        return
    try:
        verify_consistency(
            first=other,
            second=size,
            first_root=_root(first),
            second_root=_root(size),
            proof=proof,
        )
    except VerificationFailed:
        return
    raise AssertionError("a proof verified for the wrong first size")
