"""The audit log as a data protection officer checks it: the latest signed checkpoint, a full
verification on demand, and one decision's entry, receipt and inclusion in the latest
checkpoint, checked with the same proof verification an agency runs offline."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from hub.audit.public import ReceiptPublic
from hub.audit.verifier import Checkpoint, VerificationFailed, leaf_hash, verify_inclusion
from hub.config import Settings
from hub.errors import AuditUnavailable, NotFound, VerificationError
from hub.schemas import OversightDecisionPublic
from hub.services import audit, audit_checkpoints, audit_tree, oversight, receipts
from hub.services.audit_verify import VerifyReport
from hub.services.principals import Principal
from hub.services.statistics import dpo_panel
from hub.storage.models import AuditCheckpoint, AuditEntry, DecisionRecord
from keys import KeyRing

DECISION_KINDS = ("disclosure", "denial")


@dataclass(frozen=True)
class LogStatus:
    entries: int
    checkpoint: AuditCheckpoint | None


@dataclass(frozen=True)
class VerifyOutcome:
    ok: bool
    report: VerifyReport | None
    problem: str | None  # the failed check, naming entries by number only


@dataclass(frozen=True)
class InclusionOutcome:
    ok: bool
    index: int
    tree_size: int
    root_hash: str  # base64, as in the checkpoint
    problem: str | None


def status(*, session: Session) -> LogStatus:
    return LogStatus(
        entries=audit_tree.size(session), checkpoint=audit_checkpoints.latest(session=session)
    )


def verify_now(
    *, session: Session, keyring: KeyRing, settings: Settings, principal: Principal
) -> VerifyOutcome:
    """Recompute the whole log and check every checkpoint's signature (`hub audit verify`).

    Raises Forbidden for anyone but a DPO. Never raises for a damaged log: the outcome names
    the first failed check.
    """
    dpo_panel(principal)
    keys, origin = audit_checkpoints.verifier_keys(keyring=keyring, settings=settings)
    try:
        report = audit.verify(session=session, keys=keys, origin=origin)
    except VerificationError as exc:
        return VerifyOutcome(ok=False, report=None, problem=exc.message)
    return VerifyOutcome(ok=True, report=report, problem=None)


def entry_of(*, session: Session, decision: DecisionRecord) -> AuditEntry:
    """The disclosure or denial entry that logged `decision`. Raises NotFound.

    The entry is written with the decision's own time, so only entries of that instant are read.
    """
    rows = session.exec(
        select(AuditEntry).where(
            col(AuditEntry.at) == decision.at, col(AuditEntry.kind).in_(DECISION_KINDS)
        )
    ).all()
    for entry in rows:
        if json.loads(entry.body).get("decision_id") == decision.decision_id:
            return entry
    raise NotFound("the decision has no audit entry")


def decision_record(*, session: Session, decision_id: str) -> DecisionRecord:
    row = session.get(DecisionRecord, decision_id)
    if row is None:
        raise NotFound("decision not found")
    return row


def receipt_of(
    *, session: Session, keyring: KeyRing, settings: Settings, entry: AuditEntry, now: datetime
) -> ReceiptPublic | None:
    """The receipt the agency was given for a disclosure, issued again (the statement and the
    first covering checkpoint are the same, so it is the same receipt); None for a denial, or
    if no checkpoint covers the entry yet. Writes nothing."""
    body = json.loads(entry.body)
    if entry.kind != "disclosure" or "payload_digest" not in body:
        return None
    if audit_checkpoints.first_covering(session=session, index=entry.seq - 1) is None:
        return None
    return receipts.issue(
        session=session,
        signer=audit_checkpoints.signer_for(keyring=keyring, settings=settings),
        entry=entry,
        decision_id=str(body["decision_id"]),
        payload_digest=str(body["payload_digest"]),
        now=now,
    )


def _open_checkpoint(note: str, *, keyring: KeyRing, settings: Settings) -> Checkpoint:
    keys, origin = audit_checkpoints.verifier_keys(keyring=keyring, settings=settings)
    problems = []
    for key in keys:
        try:
            return Checkpoint.from_text(note, key=key, origin=origin)
        except VerificationFailed as exc:
            problems.append(str(exc))
    raise VerificationFailed("; ".join(problems) or "no key to verify the checkpoint with")


def check_inclusion(
    *, session: Session, keyring: KeyRing, settings: Settings, entry: AuditEntry, now: datetime
) -> InclusionOutcome:
    """Prove the entry is in the latest checkpoint's tree, and verify that proof against the
    checkpoint's signed root. If the latest checkpoint predates the entry, the log is
    checkpointed first (and committed). Never raises for a failed proof: the outcome says.

    Raises AuditUnavailable if no checkpoint can be made.
    """
    index = entry.seq - 1
    latest = audit_checkpoints.latest(session=session)
    if latest is None or latest.tree_size <= index:
        signer = audit_checkpoints.signer_for(keyring=keyring, settings=settings)
        latest = audit_checkpoints.checkpoint_now(
            session=session,
            signer=signer,
            now=now,
            checkpoint_every=settings.audit_checkpoint_every,
        )
    if latest is None:  # pragma: no cover - checkpoint_now returns or raises
        raise AuditUnavailable("no checkpoint")
    try:
        checkpoint = _open_checkpoint(latest.note, keyring=keyring, settings=settings)
        proof = audit_tree.inclusion_proof(session, index=index, tree_size=checkpoint.tree_size)
        verify_inclusion(
            index=index,
            tree_size=checkpoint.tree_size,
            leaf=leaf_hash(audit.entry_data(entry)),
            proof=proof,
            root=checkpoint.root_hash,
        )
    except (VerificationFailed, VerificationError) as exc:
        return InclusionOutcome(
            ok=False,
            index=index,
            tree_size=latest.tree_size,
            root_hash=base64.b64encode(bytes.fromhex(latest.root_hash)).decode(),
            problem=str(exc),
        )
    return InclusionOutcome(
        ok=True,
        index=index,
        tree_size=checkpoint.tree_size,
        root_hash=base64.b64encode(checkpoint.root_hash).decode(),
        problem=None,
    )


@dataclass(frozen=True)
class DecisionDetail:
    summary: OversightDecisionPublic
    reasons: list[tuple[str, str]]  # (code, the policy's own text)
    entry: AuditEntry
    receipt: ReceiptPublic | None
    justification: str


def decision_detail(
    *,
    session: Session,
    keyring: KeyRing,
    settings: Settings,
    principal: Principal,
    decision_id: str,
    now: datetime,
) -> DecisionDetail:
    """Everything a DPO checks about one decision of their panel. Raises NotFound (not a DPO
    of the panel, or no such decision in it)."""
    summary = oversight.get_decision(
        session=session, keyring=keyring, principal=principal, decision_id=decision_id
    )
    record = decision_record(session=session, decision_id=decision_id)
    entry = entry_of(session=session, decision=record)
    return DecisionDetail(
        summary=summary,
        reasons=[
            (str(r.get("code", "")), str(r.get("message", "")))
            for r in record.output.get("reasons", [])
        ],
        entry=entry,
        receipt=receipt_of(
            session=session, keyring=keyring, settings=settings, entry=entry, now=now
        ),
        justification=str(record.input.get("request", {}).get("justification") or ""),
    )


def decision_inclusion(
    *,
    session: Session,
    keyring: KeyRing,
    settings: Settings,
    principal: Principal,
    decision_id: str,
    now: datetime,
) -> InclusionOutcome:
    """`check_inclusion` for a decision of the DPO's panel. Raises NotFound as
    `decision_detail` does, AuditUnavailable if no checkpoint can be made."""
    oversight.get_decision(
        session=session, keyring=keyring, principal=principal, decision_id=decision_id
    )
    entry = entry_of(
        session=session, decision=decision_record(session=session, decision_id=decision_id)
    )
    return check_inclusion(
        session=session, keyring=keyring, settings=settings, entry=entry, now=now
    )
