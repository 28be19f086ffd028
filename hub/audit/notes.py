"""Signing the log's notes: checkpoints (c2sp.org/tlog-checkpoint) and receipt statements.

One Ed25519 key signs both, under the key name = the log's origin, as the checkpoint spec
recommends. A statement's second line is not a number, so no statement parses as a checkpoint.
Verification lives in `hub.audit.verifier`, which needs no part of the hub.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.audit.verifier import HASH_SIZE, VerifierKey, receipt_statement_text

ORIGIN_SUFFIX = "/audit"


def origin_for(public_url: str) -> str:
    """The log's origin (and key name): the hub's public URL without its scheme, plus "/audit".

    "https://hub.example.org/" gives "hub.example.org/audit". Raises ValueError if the URL has
    no host or would give a name with spaces or "+".
    """
    parts = urlsplit(public_url if "//" in public_url else "//" + public_url)
    if not parts.netloc:
        raise ValueError("public URL has no host to name the audit log by")
    origin = parts.netloc + parts.path.rstrip("/") + ORIGIN_SUFFIX
    if any(ch.isspace() or ch == "+" for ch in origin):
        raise ValueError("public URL gives an origin with a space or '+'")
    return origin


@dataclass(frozen=True)
class CheckpointSigner:
    """Signs notes for the log named `origin` with the hub's checkpoint key."""

    origin: str
    private_key: Ed25519PrivateKey = field(repr=False)

    @property
    def verifier_key(self) -> VerifierKey:
        public = self.private_key.public_key().public_bytes(
            encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
        )
        return VerifierKey.for_ed25519(name=self.origin, public_key=public)

    def sign(self, text: str) -> str:
        """Return `text` as a signed note with this key's signature line.

        Raises ValueError if `text` is not a valid note text: non-empty lines each ending in a
        newline, no control characters.
        """
        lines = text.split("\n")
        if not text.endswith("\n") or any(not line for line in lines[:-1]):
            raise ValueError("note text must be non-empty lines, each ending in a newline")
        if any(ord(ch) < 0x20 and ch != "\n" for ch in text):
            raise ValueError("note text must not contain control characters")
        key = self.verifier_key
        signature = self.private_key.sign(text.encode("utf-8"))
        encoded = base64.b64encode(key.key_id.to_bytes(4, "big") + signature).decode("ascii")
        return f"{text}\n\u2014 {key.name} {encoded}\n"

    def checkpoint(self, *, tree_size: int, root: bytes) -> str:
        """A signed checkpoint note: origin, tree size, base64 root hash.

        Raises ValueError if the size is negative or the root is not 32 bytes.
        """
        if tree_size < 0 or len(root) != HASH_SIZE:
            raise ValueError("checkpoint needs a tree size >= 0 and a 32-byte root")
        root_b64 = base64.b64encode(root).decode("ascii")
        return self.sign(f"{self.origin}\n{tree_size}\n{root_b64}\n")

    def receipt_statement(
        self, *, index: int, leaf: bytes, decision_id: str, payload_digest: str
    ) -> str:
        """The signed statement that leaf `index` with hash `leaf` records this decision.

        Raises ValueError if a field would break the note's line structure.
        """
        for value in (decision_id, payload_digest):
            if not value or any(ch.isspace() for ch in value):
                raise ValueError("receipt fields must be non-empty and without whitespace")
        if index < 0 or len(leaf) != HASH_SIZE:
            raise ValueError("receipt needs a leaf index >= 0 and a 32-byte leaf hash")
        text = receipt_statement_text(
            origin=self.origin,
            index=index,
            leaf=leaf,
            decision_id=decision_id,
            payload_digest=payload_digest,
        )
        return self.sign(text)
