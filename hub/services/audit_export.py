"""`hub audit export`: entries from a sequence number on, with the checkpoints that cover them,
as JSON Lines that `hub.audit.verifier.verify_export` checks alone.

The export holds entries as stored: references and digests, never personal data.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterator
from typing import Any

from sqlmodel import Session, col, select

from hub.audit import merkle
from hub.audit.verifier import EXPORT_VERSION, GENESIS_HASH
from hub.errors import BadRequest
from hub.services import audit, audit_tree
from hub.storage.models import AuditCheckpoint, AuditEntry

_BATCH = 2000


def _line(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def export_lines(*, session: Session, origin: str, since: int, until: int) -> Iterator[str]:
    """Entries `since`..`until` (sequence numbers), each checkpoint right after the entry that
    brings the tree to its size. `until` should be a checkpointed size so every entry is
    covered.

    Raises BadRequest (before yielding anything) unless 1 <= since <= until <= the log's size.
    """
    size = audit_tree.size(session)
    if not 1 <= since <= until <= size:
        raise BadRequest(f"export range must be within 1..{size}, got {since}..{until}")
    before = since - 1
    pieces = merkle.pieces(0, before) if before else []
    nodes = audit_tree.read_nodes(session, pieces)
    previous = session.get(AuditEntry, before) if before else None
    head = [
        _line({"type": "export", "version": EXPORT_VERSION, "origin": origin, "since": since}),
        _line(
            {
                "type": "frontier",
                "tree_size": before,
                "hashes": [base64.b64encode(nodes[piece]).decode("ascii") for piece in pieces],
                "prev_hash": previous.entry_hash if previous is not None else GENESIS_HASH,
            }
        ),
    ]
    rows = session.execute(
        select(col(AuditCheckpoint.tree_size), col(AuditCheckpoint.note))
        .where(col(AuditCheckpoint.tree_size) >= since)
        .where(col(AuditCheckpoint.tree_size) <= until)
    ).all()
    notes = {tree_size: note for tree_size, note in rows}
    return itertools.chain(head, _entry_lines(session, since, until, notes))


def _entry_lines(session: Session, since: int, until: int, notes: dict[int, str]) -> Iterator[str]:
    seq = since
    while seq <= until:
        batch = session.exec(
            select(AuditEntry)
            .where(col(AuditEntry.seq) >= seq)
            .where(col(AuditEntry.seq) <= until)
            .order_by(col(AuditEntry.seq))
            .limit(_BATCH)
        ).all()
        if not batch:
            return
        for entry in batch:
            yield _line(
                {
                    "type": "entry",
                    "seq": entry.seq,
                    "kind": entry.kind,
                    "at": audit.rfc3339(entry.at),
                    "body": entry.body,
                    "prev_hash": entry.prev_hash,
                    "entry_hash": entry.entry_hash,
                }
            )
            if entry.seq in notes:
                yield _line({"type": "checkpoint", "note": notes[entry.seq]})
            seq = entry.seq + 1
