"""Receipts: the requester's proof that its disclosure is on the audit log.

A receipt carries the entry's leaf index and hash, the hub's signed statement binding them to
the decision and the payload digest, a signed checkpoint whose tree includes the leaf, and the
inclusion proof into that tree. `hub.audit.verifier.verify_receipt` checks it offline with
nothing but the log's public key (`GET /v1/audit/key`).
"""

from __future__ import annotations

import base64
from datetime import datetime

from sqlmodel import Session

from hub.audit.notes import CheckpointSigner
from hub.audit.public import ReceiptPublic
from hub.audit.verifier import RECEIPT_VERSION, leaf_hash
from hub.services import audit, audit_checkpoints, audit_tree, audit_writer
from hub.storage.models import AuditEntry


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def issue(
    *,
    session: Session,
    signer: CheckpointSigner,
    entry: AuditEntry,
    decision_id: str,
    payload_digest: str,
    now: datetime,
) -> ReceiptPublic:
    """The receipt of a committed entry. Uses what the batch that wrote it handed over (the
    checkpoint it signed and the proof into it, from memory), else the first checkpoint
    covering it, or signs (and commits) a checkpoint of the log as it stands.

    Raises AuditUnavailable if no checkpoint can be made, VerificationError if the stored tree
    is damaged.
    """
    index = entry.seq - 1
    leaf = leaf_hash(audit.entry_data(entry))
    material = audit_writer.handed_over(session, entry.seq)
    if material is not None:
        note, proof = material.note, material.proof
    else:
        checkpoint = audit_checkpoints.covering(
            session=session, signer=signer, index=index, now=now
        )
        note = checkpoint.note
        proof = audit_tree.inclusion_proof(session, index=index, tree_size=checkpoint.tree_size)
    return ReceiptPublic(
        version=RECEIPT_VERSION,
        index=index,
        leaf_hash=_b64(leaf),
        decision_id=decision_id,
        payload_digest=payload_digest,
        statement=signer.receipt_statement(
            index=index, leaf=leaf, decision_id=decision_id, payload_digest=payload_digest
        ),
        checkpoint=note,
        inclusion_proof=[_b64(value) for value in proof],
    )
