"""The verifiable audit log's formats and proofs, with no database in sight.

- `verifier`: a standalone module (standard library and `cryptography` only) that checks
  inclusion and consistency proofs (RFC 9162), C2SP signed notes and checkpoints, receipts and
  exports. An agency or a DPO can copy that one file and run it alone.
- `merkle`: which stored subtree hashes a proof needs, and how to combine them.
- `notes`: signing checkpoints and receipt statements with the hub's Ed25519 key.
- `public`: the API's response models for proofs and receipts.

The database side (appending, storing subtree hashes, checkpoints) is `hub.services.audit*`.
"""

from __future__ import annotations
