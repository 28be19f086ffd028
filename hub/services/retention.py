"""Retention: a case that reached its end (`signposted` or `closed`) is kept until its
`retain_until` date, then purged.

Purging removes every row that belongs to the case (found by following foreign keys to it, so
tables added later are covered), and, when the person has no other case, crypto-shreds their
data key and removes their identity rows. The audit log is kept — it holds references only —
and stays verifiable; the purge itself is logged there as `case_purged`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, delete
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select

from hub.services import audit, subjects
from hub.storage.models import Case
from keys import KeyRing

END_STAGES = ("signposted", "closed")
# Tables never purged: the append-only audit log and its Merkle tree.
KEPT_TABLES = frozenset({"audit_entry", "audit_node", "audit_checkpoint", "audit_head"})


@dataclass(frozen=True)
class Purged:
    case_id: str
    rows: int
    subject_removed: bool
    shredded: bool


def due(*, session: Session, now: datetime) -> list[str]:
    """Ids of the cases whose retention date has passed, oldest first."""
    return list(
        session.exec(
            select(Case.id)
            .where(col(Case.stage).in_(END_STAGES), col(Case.retain_until) <= now)
            .order_by(col(Case.retain_until))
        ).all()
    )


def _delete_where(session: Session, table: Table, condition: ColumnElement[bool]) -> int:
    """Delete the matching rows of `table` and, first, every row that refers to them."""
    removed = 0
    for child in SQLModel.metadata.sorted_tables:
        if child.name in KEPT_TABLES:
            continue
        for fk in child.foreign_keys:
            if fk.column.table is table and child is not table:
                parents = sa_select(fk.column).where(condition)
                removed += _delete_where(session, child, fk.parent.in_(parents))
    result: Any = session.execute(delete(table).where(condition))
    return removed + int(result.rowcount or 0)


def purge_case(*, session: Session, keyring: KeyRing, case_id: str, now: datetime) -> Purged:
    """Purge one case and commit. Safe to call again: an absent case purges nothing."""
    case = session.get(Case, case_id)
    if case is None:
        return Purged(case_id=case_id, rows=0, subject_removed=False, shredded=False)
    subject_id = case.subject_id
    subject_ref = subjects.audit_ref(keyring, subject_id=subject_id)
    tables = SQLModel.metadata.tables
    rows = 0
    # Rows naming the case without a foreign key (e.g. policy decision records).
    for table in SQLModel.metadata.sorted_tables:
        if table.name in KEPT_TABLES or "case_id" not in table.c:
            continue
        if not any(fk.column.table is tables["case"] for fk in table.c["case_id"].foreign_keys):
            rows += _delete_where(session, table, table.c["case_id"] == case_id)
    rows += _delete_where(session, tables["case"], tables["case"].c["id"] == case_id)
    others = session.exec(select(Case.id).where(Case.subject_id == subject_id)).first()
    shredded = removed = False
    if others is None:
        shred = getattr(subjects, "shred", None)
        if shred is not None:
            # Destroy the person's data key first: any copy of the database (a backup) can
            # then no longer be decrypted either.
            shred(session=session, keyring=keyring, subject_id=subject_id)
            shredded = True
        rows += _delete_where(session, tables["subject"], tables["subject"].c["id"] == subject_id)
        removed = True
    audit.append(
        session=session,
        kind="case_purged",
        body={
            "actor": "system:retention",
            "case": case_id,
            "subject": subject_ref,
            "rows": rows,
            "subject_removed": removed,
            "key_shredded": shredded,
        },
        now=now,
    )
    audit.commit(session=session)
    return Purged(case_id=case_id, rows=rows, subject_removed=removed, shredded=shredded)


def purge_due(
    *,
    session: Session,
    keyring: KeyRing,
    now: datetime,
    progress: Callable[[int, int, Purged], None] | None = None,
) -> list[Purged]:
    """Purge every case past its retention date, one transaction per case, so an interrupted
    run keeps what it finished and the next run picks up the rest."""
    ids = due(session=session, now=now)
    done: list[Purged] = []
    for number, case_id in enumerate(ids, start=1):
        purged = purge_case(session=session, keyring=keyring, case_id=case_id, now=now)
        done.append(purged)
        if progress is not None:
            progress(number, len(ids), purged)
    return done
