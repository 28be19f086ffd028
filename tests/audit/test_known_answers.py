"""The verifier and the hub's tree against published vectors (see `vectors` for sources)."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.audit import merkle
from hub.audit.merkle import NodeId
from hub.audit.notes import CheckpointSigner
from hub.audit.verifier import (
    Frontier,
    SignedNote,
    VerificationFailed,
    VerifierKey,
    leaf_hash,
    note_key_id,
    open_note,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

from .vectors import (
    CONSISTENCY,
    EMPTY_ROOT,
    INCLUSION,
    LEAVES,
    NOTE_ENOCH_SIGNATURE_LINE,
    NOTE_SIGNATURE_LINE,
    NOTE_SKEY,
    NOTE_TEXT,
    NOTE_VKEY,
    ROOTS,
)

LEAF_HASHES = [leaf_hash(leaf) for leaf in LEAVES]


def _stored_nodes() -> dict[NodeId, bytes]:
    nodes: dict[NodeId, bytes] = {}
    for index, leaf in enumerate(LEAF_HASHES):
        nodes.update(merkle.hash_completed(index, leaf, nodes))
    return nodes


def test_roots_of_every_prefix() -> None:
    assert root_hash([]) == EMPTY_ROOT
    nodes = _stored_nodes()
    for size in range(1, 9):
        assert root_hash(LEAF_HASHES[:size]) == ROOTS[size - 1]
        assert merkle.range_hash(0, size, nodes) == ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_published_inclusion_proofs(index: int, size: int, proof: list[str]) -> None:
    hashes = [bytes.fromhex(h) for h in proof]
    nodes = _stored_nodes()
    assert [merkle.range_hash(a, b, nodes) for a, b in merkle.inclusion_ranges(index, size)] == (
        hashes
    )
    verify_inclusion(
        index=index, tree_size=size, leaf=LEAF_HASHES[index], proof=hashes, root=ROOTS[size - 1]
    )


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY)
def test_published_consistency_proofs(first: int, second: int, proof: list[str]) -> None:
    hashes = [bytes.fromhex(h) for h in proof]
    nodes = _stored_nodes()
    assert [
        merkle.range_hash(a, b, nodes) for a, b in merkle.consistency_ranges(first, second)
    ] == hashes
    verify_consistency(
        first=first,
        second=second,
        first_root=ROOTS[first - 1],
        second_root=ROOTS[second - 1],
        proof=hashes,
    )


def test_published_note_verifies_and_its_key_id_is_the_documented_hash() -> None:
    key = VerifierKey.from_text(NOTE_VKEY)
    assert key.key_id == 0xC74F20A3 == note_key_id("PeterNeumann", key.public_key)
    assert key.to_text() == NOTE_VKEY
    assert open_note(NOTE_TEXT + "\n" + NOTE_SIGNATURE_LINE, key=key) == NOTE_TEXT


def test_signing_reproduces_the_published_signature() -> None:
    seed = base64.b64decode(NOTE_SKEY.split("+", 4)[4])[1:]
    signer = CheckpointSigner(
        origin="PeterNeumann", private_key=Ed25519PrivateKey.from_private_bytes(seed)
    )
    assert signer.verifier_key.to_text() == NOTE_VKEY
    assert signer.sign(NOTE_TEXT) == NOTE_TEXT + "\n" + NOTE_SIGNATURE_LINE


def test_signatures_by_unknown_keys_are_ignored() -> None:
    key = VerifierKey.from_text(NOTE_VKEY)
    note = NOTE_TEXT + "\n" + NOTE_SIGNATURE_LINE + NOTE_ENOCH_SIGNATURE_LINE
    assert open_note(note, key=key) == NOTE_TEXT
    assert [s.name for s in SignedNote.from_text(note).signatures] == ["PeterNeumann", "EnochRoot"]


@pytest.mark.parametrize(
    ("note", "message"),
    [
        (NOTE_TEXT, "no blank line before its signatures"),
        (NOTE_TEXT + "\n", "last signature line does not end in a newline"),
        (NOTE_TEXT + "\n" + NOTE_SIGNATURE_LINE[:-1], "does not end in a newline"),
        ("\x01" + NOTE_TEXT + "\n" + NOTE_SIGNATURE_LINE, "control character"),
        (
            NOTE_TEXT + "\n" + NOTE_SIGNATURE_LINE.replace("PeterNeumann", "Peter Neumann"),
            "key name",
        ),
        (NOTE_TEXT + "\n" + NOTE_SIGNATURE_LINE + "Unexpected line.\n", "em dash"),
        (NOTE_TEXT + "\n" + NOTE_SIGNATURE_LINE * 101, "more than 100 signatures"),
        (NOTE_TEXT + "\n" + NOTE_SIGNATURE_LINE.replace("x08g", "x08g="), "not standard base64"),
        (
            NOTE_TEXT.replace("cryptography", "cryptographY") + "\n" + NOTE_SIGNATURE_LINE,
            "does not verify",
        ),
        (
            NOTE_TEXT + "\n" + NOTE_ENOCH_SIGNATURE_LINE,
            r"no signature by key PeterNeumann\+c74f20a3",
        ),
    ],
    ids=[
        "no-signatures",
        "blank-only",
        "unterminated",
        "control-char",
        "bad-name",
        "trailing-line",
        "too-many",
        "bad-base64",
        "altered-text",
        "other-key-only",
    ],
)
def test_malformed_or_forged_notes_are_refused(note: str, message: str) -> None:
    with pytest.raises(VerificationFailed, match=message):
        open_note(note, key=VerifierKey.from_text(NOTE_VKEY))


def test_a_corrupted_signature_is_refused() -> None:
    # Go's TestOpen: four characters inserted into the signature's base64.
    line = NOTE_SIGNATURE_LINE[:60] + "ABCD" + NOTE_SIGNATURE_LINE[60:]
    with pytest.raises(VerificationFailed, match="signature by key PeterNeumann"):
        open_note(NOTE_TEXT + "\n" + line, key=VerifierKey.from_text(NOTE_VKEY))


@pytest.mark.parametrize(
    ("vkey", "message"),
    [
        ("PeterNeumann+c74f20a3", "must be <name>"),
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
        ("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 lowercase hex"),
        ("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "not an Ed25519"),
        ("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==", "base64"),
        ("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "key name"),
    ],
)
def test_malformed_verifier_keys_are_refused(vkey: str, message: str) -> None:
    with pytest.raises(VerificationFailed, match=message):
        VerifierKey.from_text(vkey)


def test_inclusion_refusals_name_the_check() -> None:
    good = [bytes.fromhex(h) for h in INCLUSION[1][2]]
    args = {"index": 0, "tree_size": 8, "leaf": LEAF_HASHES[0], "root": ROOTS[7]}
    with pytest.raises(VerificationFailed, match="wrong size: expected 3, got 2"):
        verify_inclusion(**args, proof=good[:2])  # type: ignore[arg-type]
    with pytest.raises(VerificationFailed, match="outside a tree of size 8"):
        verify_inclusion(**{**args, "index": 8}, proof=good)  # type: ignore[arg-type]
    with pytest.raises(VerificationFailed, match="does not lead to the root"):
        verify_inclusion(**{**args, "root": ROOTS[6]}, proof=good)  # type: ignore[arg-type]
    with pytest.raises(VerificationFailed, match="wrong length: expected 32, got 3"):
        verify_inclusion(**args, proof=[b"abc", *good[1:]])  # type: ignore[arg-type]


def test_consistency_refusals_name_the_check() -> None:
    good = [bytes.fromhex(h) for h in CONSISTENCY[2][2]]
    with pytest.raises(VerificationFailed, match="from a smaller tree to a larger one"):
        verify_consistency(first=8, second=6, first_root=ROOTS[7], second_root=ROOTS[5], proof=good)
    with pytest.raises(VerificationFailed, match="wrong size: expected 3, got 0"):
        verify_consistency(first=6, second=8, first_root=ROOTS[5], second_root=ROOTS[7], proof=[])
    with pytest.raises(VerificationFailed, match="root of tree size 6"):
        verify_consistency(first=6, second=8, first_root=ROOTS[4], second_root=ROOTS[7], proof=good)
    with pytest.raises(VerificationFailed, match="root of tree size 8"):
        verify_consistency(first=6, second=8, first_root=ROOTS[5], second_root=ROOTS[6], proof=good)
    with pytest.raises(VerificationFailed, match="two different roots for the same tree size"):
        verify_consistency(first=3, second=3, first_root=ROOTS[2], second_root=ROOTS[3], proof=[])


def test_frontier_refuses_the_wrong_number_of_hashes() -> None:
    with pytest.raises(VerificationFailed, match="expected 2 hashes for tree size 5, got 1"):
        Frontier(5, [ROOTS[0]])
