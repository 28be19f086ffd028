"""The audit entry every change to a case writes: who, which case, the subject as the audit
log's pseudonym, and the change's own references."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from hub.services import audit, subjects
from hub.storage.models import AuditEntry, Case
from keys import KeyRing


def case_event(
    *,
    session: Session,
    keyring: KeyRing,
    actor: str,
    case: Case,
    kind: str,
    now: datetime,
    details: dict[str, Any],
) -> AuditEntry:
    """Append the entry inside the caller's transaction. Raises AuditUnavailable."""
    body = {
        "actor": actor,
        "case": case.id,
        "subject": subjects.audit_ref(keyring, subject_id=case.subject_id),
        **details,
    }
    return audit.append(session=session, kind=kind, body=body, now=now)
