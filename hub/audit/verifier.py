"""Check the hub's audit log from the outside: proofs, checkpoints, receipts and exports.

This one file needs only the Python standard library and `cryptography`, and imports nothing
else from the hub, so an agency or a data protection officer can copy it and run it alone::

    python verifier.py checkpoint checkpoint.txt --key 'hub.example.org/audit+1a2b3c4d+AXk...'
    python verifier.py receipt receipt.json --key @hub.vkey
    python verifier.py inclusion proof.json --checkpoint checkpoint.txt --key @hub.vkey
    python verifier.py consistency proof.json --old old.txt --new new.txt --key @hub.vkey
    python verifier.py export audit.jsonl --key @hub.vkey

What it implements, and from where:

- Merkle tree hashes, inclusion and consistency proof verification: RFC 9162 sections 2.1.1,
  2.1.3.2 and 2.1.4.2 (the same tree as RFC 6962): leaf = SHA-256(0x00 || entry),
  node = SHA-256(0x01 || left || right).
- Signed notes: https://c2sp.org/signed-note (as in golang.org/x/mod/sumdb/note). A note is
  text ending in a newline, a blank line, then lines "— <key name> <base64(key ID || sig)>".
  The Ed25519 key ID is the first four bytes, big-endian, of
  SHA-256(key name || 0x0A || 0x01 || 32-byte public key). A verifier key is written
  "<name>+<8 hex digits of the key ID>+<base64(0x01 || public key)>".
- Checkpoints: https://c2sp.org/tlog-checkpoint, a signed note whose text is the origin line,
  the tree size in decimal and the base64 root hash, then optional extension lines.
- The hub's own formats, specified here: the entry encoding, receipts and exports (see
  `entry_bytes`, `verify_receipt` and `verify_export`).

Every check raises `VerificationFailed` with a message naming what failed; none returns a bool.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HASH_SIZE = 32
GENESIS_HASH = "0" * 64
RECEIPT_VERSION = "hub-receipt/v1"
EXPORT_VERSION = "hub-audit-export/v1"

# RFC 9162 section 2.1.1: the one-byte prefixes that keep leaves and interior nodes apart.
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
# The per-entry hash chain is a separate, faster sequential check; its prefix keeps its hashes
# from ever being mistaken for tree hashes.
CHAIN_PREFIX = b"hub-audit-chain-v1\x00"
_LEAF_PREFIX, _NODE_PREFIX, _CHAIN_PREFIX = LEAF_PREFIX, NODE_PREFIX, CHAIN_PREFIX
# Signed-note signature type of Ed25519 (c2sp.org/signed-note, "Signature types").
_ED25519_TYPE = 0x01
_ED25519_PUBLIC_SIZE = 32
_SIGNATURE_LINE_PREFIX = "\u2014 "  # em dash, space
# The spec asks verifiers to accept at least 16 signatures; the Go reference stops at 100.
_MAX_SIGNATURES = 100
_KEY_ID_SIZE = 4
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_EMPTY_TREE_ROOT = hashlib.sha256(b"").digest()
# The JSON string encoder json.dumps(..., ensure_ascii=False) uses (C-accelerated).
_json_string = json.encoder.encode_basestring


class VerificationFailed(Exception):
    """A proof, signature, checkpoint, receipt or export does not verify.

    The message names the failed check, e.g. "inclusion proof has wrong size: expected 5, got 4".
    """


# --- hashes -----------------------------------------------------------------------------------


def leaf_hash(entry: bytes) -> bytes:
    """The RFC 9162 leaf hash of one entry's bytes: SHA-256(0x00 || entry)."""
    return hashlib.sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 9162 hash of an interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def entry_bytes(*, seq: int, kind: str, at: str, body: str) -> bytes:
    """The canonical encoding of one log entry, which is the leaf's data.

    UTF-8 JSON of {"at", "body", "kind", "seq"} with keys sorted and no whitespace; `body` is
    the entry's own canonical JSON text, kept as a string so it is hashed exactly as stored,
    and `at` is RFC 3339 UTC with microseconds ("2025-01-31T12:00:00.000000Z").
    """
    # Exactly json.dumps({...}, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
    # written out because `verify` encodes every entry of the log (a test pins the equality).
    return (
        f'{{"at":{_json_string(at)},"body":{_json_string(body)},'
        f'"kind":{_json_string(kind)},"seq":{int(seq)}}}'
    ).encode()


def chain_hash(*, prev_hash: str, entry: bytes) -> str:
    """The entry's link in the hash chain: hex SHA-256(prefix || previous link (hex) || entry)."""
    return hashlib.sha256(_CHAIN_PREFIX + prev_hash.encode("ascii") + entry).hexdigest()


class Frontier:
    """A tree of `size` leaves, kept as the roots of its perfect subtrees, largest first.

    This is all one needs to append leaves and to compute the root, in O(log size) hashes.
    """

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        """Start from the subtree roots of a tree of `size` leaves (none for an empty tree).

        Raises VerificationFailed if there are not exactly as many hashes as `size` has one
        bits, or one of them is not 32 bytes.
        """
        if size < 0 or len(hashes) != size.bit_count():
            raise VerificationFailed(
                f"frontier has wrong size: expected {max(size, 0).bit_count()} hashes for tree "
                f"size {size}, got {len(hashes)}"
            )
        for value in hashes:
            _check_hash(value, "frontier hash")
        self.size = size
        self._hashes = list(hashes)

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def append(self, leaf: bytes) -> list[bytes]:
        """Add one leaf hash; return the hashes of the subtrees it completes, the leaf first,
        then one per level up (leaf i completes one subtree per trailing one bit of i)."""
        _check_hash(leaf, "leaf hash")
        self._hashes.append(leaf)
        self.size += 1
        completed = [leaf]
        # Each trailing zero bit of the new size is one pair of equal subtrees to merge.
        remaining = self.size
        while remaining % 2 == 0:
            right = self._hashes.pop()
            left = self._hashes.pop()
            self._hashes.append(node_hash(left, right))
            completed.append(self._hashes[-1])
            remaining //= 2
        return completed

    def root(self) -> bytes:
        """The Merkle tree hash (RFC 9162 MTH); SHA-256 of nothing for the empty tree."""
        if not self._hashes:
            return _EMPTY_TREE_ROOT
        result = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            result = node_hash(left, result)
        return result


def root_hash(leaf_hashes: Iterable[bytes]) -> bytes:
    """The Merkle tree hash of a whole list of leaf hashes."""
    frontier = Frontier()
    for value in leaf_hashes:
        frontier.append(value)
    return frontier.root()


# --- proofs -----------------------------------------------------------------------------------


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def _inclusion_proof_size(index: int, size: int) -> int:
    # The length of PATH(m, D[n]) in RFC 9162 section 2.1.3.1, by the same recursion.
    length = 0
    while size > 1:
        k = _largest_power_of_two_below(size)
        if index < k:
            size = k
        else:
            index, size = index - k, size - k
        length += 1
    return length


def _consistency_proof_size(first: int, second: int) -> int:
    # The length of PROOF(m, D[n]) = SUBPROOF(m, D[n], true), RFC 9162 section 2.1.4.1.
    length, whole = 0, True
    while first != second:
        k = _largest_power_of_two_below(second)
        if first <= k:
            second = k
        else:
            first, second, whole = first - k, second - k, False
        length += 1
    return length if whole else length + 1


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise VerificationFailed(f"{what} has wrong length: expected {HASH_SIZE}, got {len(value)}")


def root_from_inclusion_proof(
    *, index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes]
) -> bytes:
    """The root that `proof` leads to from leaf hash `leaf` at `index` (RFC 9162 2.1.3.2).

    Raises VerificationFailed if the index is outside the tree or the proof has the wrong
    length or a hash of the wrong size.
    """
    if not 0 <= index < tree_size:
        raise VerificationFailed(f"leaf index {index} is outside a tree of size {tree_size}")
    _check_hash(leaf, "leaf hash")
    expected = _inclusion_proof_size(index, tree_size)
    if len(proof) != expected:
        raise VerificationFailed(
            f"inclusion proof has wrong size: expected {expected}, got {len(proof)}"
        )
    fn, sn, result = index, tree_size - 1, leaf
    for value in proof:
        _check_hash(value, "inclusion proof hash")
        if sn == 0:
            raise VerificationFailed("inclusion proof is longer than the tree is high")
        if fn & 1 or fn == sn:
            result = node_hash(value, result)
            while fn & 1 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            result = node_hash(result, value)
        fn, sn = fn >> 1, sn >> 1
    # The length check above makes these unreachable; they are the RFC's own tests.
    if sn != 0:
        raise VerificationFailed("inclusion proof does not reach the root")
    return result


def verify_inclusion(
    *, index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf hash `leaf` is at `index` in the tree of `tree_size` with `root`.

    Raises VerificationFailed naming the failed check.
    """
    _check_hash(root, "root hash")
    if root_from_inclusion_proof(index=index, tree_size=tree_size, leaf=leaf, proof=proof) != root:
        raise VerificationFailed(
            f"inclusion proof of leaf {index} does not lead to the root of tree size {tree_size}"
        )


def verify_consistency(
    *, first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of size `second` extends the tree of size `first` (RFC 9162 2.1.4.2).

    Raises VerificationFailed naming the failed check: sizes out of order, a proof of the
    wrong length or with a hash of the wrong size, or a root that does not match.
    """
    _check_hash(first_root, "first root hash")
    _check_hash(second_root, "second root hash")
    if not 0 <= first <= second:
        raise VerificationFailed(
            f"consistency proof must go from a smaller tree to a larger one: got {first} to "
            f"{second}"
        )
    expected = _consistency_proof_size(first, second) if 0 < first < second else 0
    if len(proof) != expected:
        raise VerificationFailed(
            f"consistency proof has wrong size: expected {expected}, got {len(proof)}"
        )
    if first == second:
        if first_root != second_root:
            raise VerificationFailed(f"two different roots for the same tree size {first}")
        return
    if first == 0:
        return  # The empty tree is a prefix of every tree.
    for value in proof:
        _check_hash(value, "consistency proof hash")
    path = list(proof)
    if first & (first - 1) == 0:
        # A first tree that is a perfect subtree is its own first proof node.
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    first_result = second_result = path[0]
    for value in path[1:]:
        if sn == 0:
            raise VerificationFailed("consistency proof is longer than the tree is high")
        if fn & 1 or fn == sn:
            first_result = node_hash(value, first_result)
            second_result = node_hash(value, second_result)
            while fn & 1 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            second_result = node_hash(second_result, value)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationFailed("consistency proof does not reach the second root")
    if first_result != first_root:
        raise VerificationFailed(f"consistency proof does not match the root of tree size {first}")
    if second_result != second_root:
        raise VerificationFailed(f"consistency proof does not match the root of tree size {second}")


# --- signed notes -----------------------------------------------------------------------------


def _b64decode(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise VerificationFailed(f"{what} is not standard base64") from None
    # Only the one canonical encoding is accepted, so a note cannot be altered invisibly.
    if base64.b64encode(raw).decode("ascii") != text:
        raise VerificationFailed(f"{what} is not canonical base64")
    return raw


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _check_key_name(name: str) -> None:
    if not name or any(ch.isspace() or ch == "+" for ch in name):
        raise VerificationFailed("key name must be non-empty, without spaces or '+'")


def note_key_id(name: str, public_key: bytes) -> int:
    """The signed-note key ID of an Ed25519 key: the first 4 bytes (big-endian) of
    SHA-256(name || 0x0A || 0x01 || public key), per c2sp.org/signed-note."""
    material = name.encode("utf-8") + b"\n" + bytes([_ED25519_TYPE]) + public_key
    return int.from_bytes(hashlib.sha256(material).digest()[:_KEY_ID_SIZE], "big")


@dataclass(frozen=True)
class VerifierKey:
    """An Ed25519 signed-note verifier key: a name, its key ID and the 32-byte public key."""

    name: str
    key_id: int
    public_key: bytes

    @classmethod
    def for_ed25519(cls, *, name: str, public_key: bytes) -> VerifierKey:
        """Raises VerificationFailed if the name is not a valid key name or the key is not a
        32-byte Ed25519 public key."""
        _check_key_name(name)
        if len(public_key) != _ED25519_PUBLIC_SIZE:
            raise VerificationFailed(
                f"Ed25519 public key has wrong length: expected 32, got {len(public_key)}"
            )
        try:
            Ed25519PublicKey.from_public_bytes(public_key)
        except ValueError:
            raise VerificationFailed("public key is not an Ed25519 key") from None
        return cls(name=name, key_id=note_key_id(name, public_key), public_key=public_key)

    @classmethod
    def from_text(cls, text: str) -> VerifierKey:
        """Parse "<name>+<8 hex key ID>+<base64(0x01 || public key)>".

        Raises VerificationFailed if a part is missing or malformed, the key type is not
        Ed25519, or the key ID does not match the name and key.
        """
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise VerificationFailed("verifier key must be <name>+<key ID>+<key>")
        name, hex_id, encoded = parts
        if re.fullmatch(r"[0-9a-f]{8}", hex_id) is None:
            raise VerificationFailed("verifier key ID must be 8 lowercase hex digits")
        raw = _b64decode(encoded, "verifier key")
        if not raw or raw[0] != _ED25519_TYPE:
            raise VerificationFailed("verifier key is not an Ed25519 (type 0x01) key")
        key = cls.for_ed25519(name=name, public_key=raw[1:])
        if key.key_id != int(hex_id, 16):
            raise VerificationFailed("verifier key ID does not match its name and key")
        return key

    def to_text(self) -> str:
        return (
            f"{self.name}+{self.key_id:08x}+{_b64encode(bytes([_ED25519_TYPE]) + self.public_key)}"
        )


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: int
    signature: bytes


@dataclass(frozen=True)
class SignedNote:
    """A parsed, not yet verified, signed note: its text and its signature lines."""

    text: str
    signatures: tuple[NoteSignature, ...]

    @classmethod
    def from_text(cls, note: str) -> SignedNote:
        """Parse a signed note without verifying it.

        Raises VerificationFailed if it has a control character, no blank line before the
        signatures, no signature, too many, or a malformed signature line.
        """
        if _CONTROL.search(note):
            raise VerificationFailed("note contains a control character")
        split = note.rfind("\n\n")
        if split < 0:
            raise VerificationFailed("note has no blank line before its signatures")
        text, block = note[: split + 1], note[split + 2 :]
        if not block.endswith("\n"):
            raise VerificationFailed("note's last signature line does not end in a newline")
        lines = block[:-1].split("\n")
        if len(lines) > _MAX_SIGNATURES:
            raise VerificationFailed(f"note has more than {_MAX_SIGNATURES} signatures")
        signatures = []
        for line in lines:
            if not line.startswith(_SIGNATURE_LINE_PREFIX):
                raise VerificationFailed("note signature line does not start with an em dash")
            fields = line[len(_SIGNATURE_LINE_PREFIX) :].split(" ")
            if len(fields) != 2:
                raise VerificationFailed("note signature line must be a key name and a signature")
            name, encoded = fields
            _check_key_name(name)
            raw = _b64decode(encoded, "note signature")
            if len(raw) <= _KEY_ID_SIZE:
                raise VerificationFailed("note signature is too short")
            signatures.append(
                NoteSignature(
                    name=name,
                    key_id=int.from_bytes(raw[:_KEY_ID_SIZE], "big"),
                    signature=raw[_KEY_ID_SIZE:],
                )
            )
        return cls(text=text, signatures=tuple(signatures))

    def verify(self, key: VerifierKey) -> str:
        """Return the note's text once a signature by `key` verifies.

        Signatures by other keys are ignored, as the spec requires. Raises VerificationFailed
        if no signature is by `key`, or any signature by `key` does not verify.
        """
        mine = [s for s in self.signatures if s.name == key.name and s.key_id == key.key_id]
        if not mine:
            raise VerificationFailed(f"note has no signature by key {key.name}+{key.key_id:08x}")
        public = Ed25519PublicKey.from_public_bytes(key.public_key)
        for signature in mine:
            try:
                public.verify(signature.signature, self.text.encode("utf-8"))
            except InvalidSignature:
                raise VerificationFailed(
                    f"signature by key {key.name}+{key.key_id:08x} does not verify"
                ) from None
        return self.text


def open_note(note: str, *, key: VerifierKey) -> str:
    """Parse a signed note and return its text once `key`'s signature verifies.

    Raises VerificationFailed as `SignedNote.from_text` and `SignedNote.verify` do.
    """
    return SignedNote.from_text(note).verify(key)


def _text_lines(text: str) -> list[str]:
    return text[:-1].split("\n")


def _decimal(value: str, what: str) -> int:
    if _DECIMAL.fullmatch(value) is None:
        raise VerificationFailed(f"{what} is not a decimal number without leading zeros")
    return int(value)


@dataclass(frozen=True)
class Checkpoint:
    """A verified C2SP checkpoint: origin, tree size, root hash, extension lines, and the signed
    note it came from."""

    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...]
    note: str

    @classmethod
    def from_text(cls, note: str, *, key: VerifierKey, origin: str | None = None) -> Checkpoint:
        """Verify `key`'s signature on a checkpoint note, then parse its text.

        `origin`, if given, must equal the origin line. Raises VerificationFailed naming the
        failed check: the note's form, its signature, or a malformed or unexpected line.
        """
        lines = _text_lines(open_note(note, key=key))
        if len(lines) < 3:
            raise VerificationFailed("checkpoint must have origin, tree size and root lines")
        origin_line, size_line, root_line, *extensions = lines
        if not origin_line:
            raise VerificationFailed("checkpoint origin line is empty")
        if origin is not None and origin_line != origin:
            raise VerificationFailed(
                f"checkpoint is for origin {origin_line!r}, expected {origin!r}"
            )
        tree_size = _decimal(size_line, "checkpoint tree size")
        root = _b64decode(root_line, "checkpoint root hash")
        _check_hash(root, "checkpoint root hash")
        if any(not line for line in extensions):
            raise VerificationFailed("checkpoint extension line is empty")
        return cls(
            origin=origin_line,
            tree_size=tree_size,
            root_hash=root,
            extensions=tuple(extensions),
            note=note,
        )


# --- receipts ---------------------------------------------------------------------------------


def receipt_statement_text(
    *, origin: str, index: int, leaf: bytes, decision_id: str, payload_digest: str
) -> str:
    """The text of the hub's signed statement in a receipt.

    Its second line is not a number, so a statement can never be read as a checkpoint even
    though the same key signs both.
    """
    return (
        f"{origin}\n{RECEIPT_VERSION}\nindex {index}\nleaf {_b64encode(leaf)}\n"
        f"decision {decision_id}\npayload {payload_digest}\n"
    )


@dataclass(frozen=True)
class Receipt:
    """A verified receipt: this decision's entry is leaf `index`, included in `checkpoint`."""

    index: int
    leaf_hash: bytes
    decision_id: str
    payload_digest: str
    checkpoint: Checkpoint


def _field(document: Mapping[str, Any], name: str, kind: type) -> Any:
    value = document.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise VerificationFailed(f"field {name!r} is missing or not a {kind.__name__}")
    return value


def _hashes(values: Any, what: str) -> list[bytes]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise VerificationFailed(f"{what} must be a list of base64 hashes")
    return [_b64decode(v, what) for v in values]


def _statement_fields(text: str) -> tuple[str, int, bytes, str, str]:
    lines = _text_lines(text)
    if len(lines) != 6 or lines[1] != RECEIPT_VERSION:
        raise VerificationFailed(f"receipt statement is not a {RECEIPT_VERSION} statement")
    values = {}
    for line, label in zip(lines[2:], ("index", "leaf", "decision", "payload"), strict=True):
        prefix = label + " "
        if not line.startswith(prefix):
            raise VerificationFailed(f"receipt statement has no {label!r} line")
        values[label] = line[len(prefix) :]
    return (
        lines[0],
        _decimal(values["index"], "receipt index"),
        _b64decode(values["leaf"], "receipt leaf hash"),
        values["decision"],
        values["payload"],
    )


def verify_receipt(
    document: Mapping[str, Any], *, key: VerifierKey, origin: str | None = None
) -> Receipt:
    """Check a receipt offline: its signed statement, its checkpoint, and the inclusion proof
    of its leaf in that checkpoint's tree.

    A receipt is a JSON object: "version" (hub-receipt/v1), "index" (0-based leaf index; the
    entry's sequence number minus one), "leaf_hash" (base64), "decision_id",
    "payload_digest", "statement" (a note signed by the log key whose text is
    `receipt_statement_text`), "checkpoint" (a signed checkpoint whose tree includes the leaf)
    and "inclusion_proof" (base64 hashes). Raises VerificationFailed naming the failed check.
    """
    if document.get("version") != RECEIPT_VERSION:
        raise VerificationFailed(f"receipt version is not {RECEIPT_VERSION!r}")
    statement = open_note(_field(document, "statement", str), key=key)
    signed_origin, index, leaf, decision_id, payload_digest = _statement_fields(statement)
    if origin is not None and signed_origin != origin:
        raise VerificationFailed(f"receipt is for origin {signed_origin!r}, expected {origin!r}")
    claimed = {
        "index": _field(document, "index", int),
        "leaf_hash": _b64decode(_field(document, "leaf_hash", str), "receipt leaf hash"),
        "decision_id": _field(document, "decision_id", str),
        "payload_digest": _field(document, "payload_digest", str),
    }
    signed = {
        "index": index,
        "leaf_hash": leaf,
        "decision_id": decision_id,
        "payload_digest": payload_digest,
    }
    for name, value in signed.items():
        if claimed[name] != value:
            raise VerificationFailed(f"receipt field {name!r} does not match its signed statement")
    checkpoint = Checkpoint.from_text(
        _field(document, "checkpoint", str), key=key, origin=signed_origin
    )
    verify_inclusion(
        index=index,
        tree_size=checkpoint.tree_size,
        leaf=leaf,
        proof=_hashes(document.get("inclusion_proof"), "receipt inclusion proof"),
        root=checkpoint.root_hash,
    )
    return Receipt(
        index=index,
        leaf_hash=leaf,
        decision_id=decision_id,
        payload_digest=payload_digest,
        checkpoint=checkpoint,
    )


# --- exports ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportReport:
    """What a verified export covered: entries `first_seq`..`last_seq` and their checkpoints."""

    first_seq: int
    last_seq: int
    checkpoints: tuple[Checkpoint, ...]
    head_hash: str


def _json_line(number: int, line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        raise VerificationFailed(f"export line {number} is not JSON") from None
    if not isinstance(value, dict):
        raise VerificationFailed(f"export line {number} is not a JSON object")
    return value


def verify_export(
    lines: Iterable[str], *, key: VerifierKey, origin: str | None = None
) -> ExportReport:
    """Check an audit export (JSON Lines) against the checkpoints it carries.

    Line 1: {"type": "export", "version": "hub-audit-export/v1", "origin", "since"}.
    Line 2: {"type": "frontier", "tree_size": since - 1, "hashes": [...], "prev_hash"}: the
    subtree roots of the tree before the first exported entry, and that entry's chain link.
    Then, in order, {"type": "entry", "seq", "kind", "at", "body", "prev_hash", "entry_hash"}
    lines, each checkpoint {"type": "checkpoint", "note"} right after the entry that brings the
    tree to its size. Every entry must be covered by a checkpoint; the frontier is trusted only
    because the checkpoints' roots, which are signed, are recomputed from it and the entries.
    Raises VerificationFailed naming the first line or entry that fails.
    """
    numbered = enumerate((line for line in lines if line.strip()), start=1)
    header = _json_line(*next(numbered, (1, "null")))
    if header.get("type") != "export" or header.get("version") != EXPORT_VERSION:
        raise VerificationFailed(f"export does not start with a {EXPORT_VERSION} header")
    expected_origin = origin if origin is not None else _field(header, "origin", str)
    since = _field(header, "since", int)
    number, raw = next(numbered, (2, "null"))
    start = _json_line(number, raw)
    if start.get("type") != "frontier" or start.get("tree_size") != since - 1:
        raise VerificationFailed(f"export line 2 is not the frontier of tree size {since - 1}")
    frontier = Frontier(since - 1, _hashes(start.get("hashes"), "frontier hashes"))
    prev_hash = _field(start, "prev_hash", str)
    checkpoints: list[Checkpoint] = []
    for number, raw in numbered:
        line = _json_line(number, raw)
        if line.get("type") == "entry":
            seq = frontier.size + 1
            if line.get("seq") != seq:
                raise VerificationFailed(f"export line {number}: expected entry {seq}")
            data = entry_bytes(
                seq=seq,
                kind=_field(line, "kind", str),
                at=_field(line, "at", str),
                body=_field(line, "body", str),
            )
            if line.get("prev_hash") != prev_hash:
                raise VerificationFailed(f"entry {seq} does not link to entry {seq - 1}")
            prev_hash = chain_hash(prev_hash=prev_hash, entry=data)
            if line.get("entry_hash") != prev_hash:
                raise VerificationFailed(f"entry {seq} has been altered (chain hash differs)")
            frontier.append(leaf_hash(data))
        elif line.get("type") == "checkpoint":
            checkpoint = Checkpoint.from_text(
                _field(line, "note", str), key=key, origin=expected_origin
            )
            if checkpoint.tree_size != frontier.size:
                raise VerificationFailed(
                    f"export line {number}: checkpoint of tree size {checkpoint.tree_size} "
                    f"follows entry {frontier.size}"
                )
            if checkpoint.root_hash != frontier.root():
                first_uncovered = checkpoints[-1].tree_size + 1 if checkpoints else since
                raise VerificationFailed(
                    f"entries {first_uncovered}..{frontier.size} do not match the checkpoint of "
                    f"tree size {frontier.size}"
                )
            checkpoints.append(checkpoint)
        else:
            raise VerificationFailed(f"export line {number} has an unknown type")
    covered = checkpoints[-1].tree_size if checkpoints else since - 1
    if covered != frontier.size:
        raise VerificationFailed(
            f"entries {covered + 1}..{frontier.size} are not covered by any checkpoint"
        )
    return ExportReport(
        first_seq=since,
        last_seq=frontier.size,
        checkpoints=tuple(checkpoints),
        head_hash=prev_hash,
    )


# --- command line -----------------------------------------------------------------------------


def _read(path: str) -> str:
    return Path(path).read_text(encoding="utf-8")


def _key(value: str) -> VerifierKey:
    return VerifierKey.from_text(_read(value[1:]) if value.startswith("@") else value)


def _json_file(path: str) -> dict[str, Any]:
    try:
        document = json.loads(_read(path))
    except json.JSONDecodeError:
        raise VerificationFailed(f"{path} is not JSON") from None
    if not isinstance(document, dict):
        raise VerificationFailed(f"{path} is not a JSON object")
    return document


def _run(args: argparse.Namespace) -> str:
    key = _key(args.key)
    origin = args.origin
    if args.command == "checkpoint":
        checkpoint = Checkpoint.from_text(_read(args.file), key=key, origin=origin)
        return (
            f"checkpoint verifies: {checkpoint.origin}, tree size {checkpoint.tree_size}, "
            f"root {_b64encode(checkpoint.root_hash)}"
        )
    if args.command == "receipt":
        document = _json_file(args.file)
        # A saved disclosure answer holds its receipt under "receipt".
        inner = document.get("receipt", document)
        if not isinstance(inner, dict):
            raise VerificationFailed("receipt is not a JSON object")
        receipt = verify_receipt(inner, key=key, origin=origin)
        return (
            f"receipt verifies: decision {receipt.decision_id} is leaf {receipt.index} "
            f"(entry {receipt.index + 1}) of tree size {receipt.checkpoint.tree_size}"
        )
    if args.command == "inclusion":
        proof = _json_file(args.file)
        checkpoint = Checkpoint.from_text(_read(args.checkpoint), key=key, origin=origin)
        index = _field(proof, "index", int)
        if proof.get("tree_size") != checkpoint.tree_size:
            raise VerificationFailed("proof's tree size is not the checkpoint's")
        verify_inclusion(
            index=index,
            tree_size=checkpoint.tree_size,
            leaf=_b64decode(_field(proof, "leaf_hash", str), "leaf hash"),
            proof=_hashes(proof.get("hashes"), "inclusion proof"),
            root=checkpoint.root_hash,
        )
        return f"inclusion verifies: leaf {index} is in tree size {checkpoint.tree_size}"
    if args.command == "consistency":
        proof = _json_file(args.file)
        old = Checkpoint.from_text(_read(args.old), key=key, origin=origin)
        new = Checkpoint.from_text(_read(args.new), key=key, origin=old.origin)
        if (proof.get("first"), proof.get("second")) != (old.tree_size, new.tree_size):
            raise VerificationFailed("proof's sizes are not the two checkpoints' sizes")
        verify_consistency(
            first=old.tree_size,
            second=new.tree_size,
            first_root=old.root_hash,
            second_root=new.root_hash,
            proof=_hashes(proof.get("hashes"), "consistency proof"),
        )
        return f"consistency verifies: tree size {new.tree_size} extends {old.tree_size}"
    with Path(args.file).open(encoding="utf-8") as handle:
        report = verify_export(handle, key=key, origin=origin)
    return (
        f"export verifies: entries {report.first_seq}..{report.last_seq}, "
        f"{len(report.checkpoints)} checkpoints"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Verify the hub's audit log offline.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("checkpoint", "verify a signed checkpoint"),
        ("receipt", "verify a disclosure receipt (JSON)"),
        ("inclusion", "verify an inclusion proof (JSON) against a checkpoint"),
        ("consistency", "verify a consistency proof (JSON) between two checkpoints"),
        ("export", "verify an audit export (JSON Lines)"),
    ):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("file")
        sub.add_argument("--key", required=True, help="verifier key, or @FILE holding one")
        sub.add_argument("--origin", default=None, help="expected log origin")
        if name == "inclusion":
            sub.add_argument("--checkpoint", required=True)
        if name == "consistency":
            sub.add_argument("--old", required=True)
            sub.add_argument("--new", required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; exit status 0 when the object verifies, 1 when it does not."""
    args = _parser().parse_args(argv)
    try:
        print(_run(args))
    except (VerificationFailed, OSError, UnicodeDecodeError) as exc:
        print(f"does not verify: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
