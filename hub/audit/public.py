"""What the API answers about the audit log: proofs and receipts. Hashes are standard base64,
as in checkpoints (c2sp.org/tlog-checkpoint); leaf indexes start at 0 (leaf = entry seq - 1)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class InclusionProofPublic(BaseModel):
    index: int = Field(description="0-based leaf index: the entry's sequence number minus one")
    tree_size: int
    leaf_hash: str = Field(description="base64 SHA-256(0x00 || entry)")
    hashes: list[str] = Field(description="RFC 9162 inclusion path, base64, leaf end first")


class ConsistencyProofPublic(BaseModel):
    first: int
    second: int
    hashes: list[str] = Field(description="RFC 9162 consistency proof, base64")


class ReceiptPublic(BaseModel):
    """Proof, checkable offline with the log's public key, that a disclosure is on the log."""

    version: str = Field(description="hub-receipt/v1")
    index: int = Field(description="0-based leaf index of the disclosure's entry")
    leaf_hash: str = Field(description="base64 leaf hash of the disclosure's entry")
    decision_id: str
    payload_digest: str
    statement: str = Field(description="signed note: the hub's statement binding the above")
    checkpoint: str = Field(description="signed checkpoint whose tree includes the leaf")
    inclusion_proof: list[str] = Field(description="base64 path from the leaf to that root")
