"""Proofs and the public key as the API and `hub audit prove` hand them out."""

from __future__ import annotations

import base64

from sqlmodel import Session

from hub.audit.public import ConsistencyProofPublic, InclusionProofPublic
from hub.services import audit_tree


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def inclusion(*, session: Session, index: int, tree_size: int) -> InclusionProofPublic:
    """The inclusion proof of leaf `index` (entry seq index + 1) in the tree of `tree_size`.

    Raises BadRequest if the tree size exceeds the log or the index is not below it,
    VerificationError if the stored tree is damaged.
    """
    hashes = audit_tree.inclusion_proof(session, index=index, tree_size=tree_size)
    return InclusionProofPublic(
        index=index,
        tree_size=tree_size,
        leaf_hash=_b64(audit_tree.leaf_at(session, index)),
        hashes=[_b64(h) for h in hashes],
    )


def consistency(*, session: Session, first: int, second: int) -> ConsistencyProofPublic:
    """The proof that the tree of `second` leaves extends the tree of `first`.

    Raises BadRequest unless 0 <= first <= second <= the log's size, VerificationError if the
    stored tree is damaged.
    """
    hashes = audit_tree.consistency_proof(session, first=first, second=second)
    return ConsistencyProofPublic(first=first, second=second, hashes=[_b64(h) for h in hashes])
