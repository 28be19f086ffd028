"""The spine: one disclosure request, from policy decision to a durable audit entry.

1. resolve the case and check the caller is an agency system;
2. build the policy input and ask the policy decision point (any failure there is a deny);
3. on deny: append a denial entry (with the decision record), raise;
4. on allow: fetch only the permitted categories from the holding agencies, concurrently;
   drop fields outside them and scrub the subject's local identifiers;
5. append the disclosure entry through the process's audit writer (group commit) —
   nothing is returned before the entry is durable;
6. answer with the records, the sources' status and a signed receipt.

The decision record is handed to the audit writer with its entry and inserted in the same
transaction: every entry's `decision_id` and `decision_digest` name a record, and a record
exists only if its entry does. A request costs no write transaction of its own; a request whose
entry the log refuses leaves nothing (503, nothing disclosed). A break-glass window is the
exception: it is committed before the entry is tried, so it is queued for review even if the
log then refuses the entry.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from connectors import Connector, SourceQuery, fetch_all
from hub.config import Settings
from hub.errors import Forbidden, NotFound, PolicyDenied
from hub.policy import PolicyDecision, PolicyEngine, PolicyEngineError, PolicyInput, Reason
from hub.schemas import DisclosedRecord, DisclosureCreate, DisclosurePublic, SourcePublic
from hub.services import (
    audit,
    audit_checkpoints,
    audit_writer,
    breakglass,
    decisions,
    disclosure_reads,
    receipts,
    subject_keys,
    subjects,
)
from hub.services.principals import Principal
from hub.services.sources import ConnectorRegistry
from hub.storage.db import reads_only
from keys import KeyRing

ADULT_AGE = 18


@dataclass(frozen=True)
class Deps:
    """What one disclosure needs besides the request."""

    session: Session
    keyring: KeyRing
    policy: PolicyEngine
    connectors: ConnectorRegistry
    settings: Settings


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_policy_input(
    *,
    deps: Deps,
    principal: Principal,
    case: disclosure_reads.CaseFacts,
    request: DisclosureCreate,
    now: datetime,
) -> PolicyInput:
    assert principal.agency_id is not None
    session, keyring = deps.session, deps.keyring
    if case.agency_kind is None:
        raise NotFound("case not found")
    # Decrypted once: the policy gets the age in whole years (compared with the panel
    # profile's age of consent) and the hub-wide minor flag, never the date of birth.
    subject_age = subjects.identity_from(
        session=session,
        keyring=keyring,
        subject_id=case.subject_id,
        identity_ciphertext=case.identity_ciphertext,
    ).age_on(now.date())
    break_glass_since = (
        breakglass.opened_at(session=session, case_id=case.id, agency_id=principal.agency_id)
        if request.break_glass
        else None
    )
    active_consents, active_grants = disclosure_reads.active_terms(
        session, case_id=case.id, agency_id=principal.agency_id
    )
    consents = [
        {
            "id": c.id,
            "given_by": c.given_by,
            "explicit": c.explicit,
            "recipients": list(c.recipients),
            "purposes": list(c.purposes),
            "categories": list(c.categories),
            "valid_from": _rfc3339(c.valid_from),
            "valid_until": _rfc3339(c.valid_until) if c.valid_until else None,
            "state": c.state,
        }
        for c in active_consents
    ]
    grants = [
        {
            "id": g.id,
            "agency": g.agency_id,
            "purposes": list(g.purposes),
            "categories": list(g.categories),
            "not_before": _rfc3339(g.not_before),
            "expires_at": _rfc3339(g.expires_at),
            "state": g.state,
            "legal_basis": g.legal_basis,
        }
        for g in active_grants
    ]
    return PolicyInput.model_validate(
        {
            "requester": {
                "agency": principal.agency_id,
                "agency_kind": case.agency_kind,
                "client": principal.subject,
                "user": None,
                "roles": list(principal.roles),
                "panels": list(principal.panels),
            },
            "case": {
                "id": case.id,
                "panel": case.panel_id,
                "profile": case.profile,
                "stage": case.stage,
                "lead_agency": case.lead_agency,
                "designated_agencies": list(case.designated_agencies),
                "subject_is_minor": subject_age < ADULT_AGE,
                "subject_age": subject_age,
            },
            "request": {
                "purpose": request.purpose,
                "categories": list(request.categories),
                "justification": request.justification or "",
                "break_glass": request.break_glass,
                "break_glass_since": (
                    _rfc3339(break_glass_since) if break_glass_since is not None else None
                ),
            },
            "consents": consents,
            "grants": grants,
            "now": _rfc3339(now),
        }
    )


def _decide(deps: Deps, policy_input: PolicyInput) -> PolicyDecision:
    try:
        return deps.policy.decide(policy_input)
    except PolicyEngineError:
        # Fail closed: no answer from the policy means no data.
        return PolicyDecision(
            allow=False,
            permitted_categories=[],
            legal_basis=None,
            obligations=[],
            reasons=[
                Reason(
                    code="policy_engine_error",
                    message="the policy decision point did not answer; access is denied",
                )
            ],
            revision=deps.policy.revision,
        )


def _entry_body(
    *,
    principal: Principal,
    case: disclosure_reads.CaseFacts,
    subject_ref: str,
    request: DisclosureCreate,
    decision: PolicyDecision,
    decision_id: str,
) -> dict[str, Any]:
    return {
        "actor": principal.actor,
        "agency": principal.agency_id,
        "case": case.id,
        "subject": subject_ref,
        "purpose": request.purpose,
        "categories_requested": sorted(set(request.categories)),
        "decision": "allow" if decision.allow else "deny",
        "decision_id": decision_id,
        "policy_revision": decision.revision,
        "legal_basis": decision.legal_basis,
        "reasons": sorted({r.code for r in decision.reasons}),
        "break_glass": request.break_glass,
    }


def _scrub(value: Any, secrets: set[str]) -> Any:
    """Belt and braces after the connector's own mapping: no local identifier leaves."""
    if isinstance(value, str):
        return "[redacted]" if value in secrets else value
    if isinstance(value, list):
        return [_scrub(v, secrets) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v, secrets) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class _FetchPlan:
    """Which sources to ask for what, and every local identifier of the subject to scrub."""

    requests: dict[str, tuple[Connector, SourceQuery]]
    secrets: frozenset[str]


def _plan_fetch(deps: Deps, case: disclosure_reads.CaseFacts, permitted: list[str]) -> _FetchPlan:
    holders = disclosure_reads.holders(deps.session, deps.keyring, case)
    connectors = deps.connectors.holding(holders.members)
    wanted = {
        agency_id: tuple(c for c in permitted if c in connector.categories)
        for agency_id, connector in connectors.items()
    }
    local = holders.local_ids
    requests = {
        agency_id: (
            connector,
            SourceQuery(local_id=local[agency_id], categories=wanted[agency_id]),
        )
        for agency_id, connector in connectors.items()
        if wanted[agency_id] and agency_id in local
    }
    return _FetchPlan(requests=requests, secrets=holders.secrets)


def _fetch(
    deps: Deps, plan: _FetchPlan, permitted: list[str]
) -> tuple[dict[str, list[DisclosedRecord]], dict[str, SourcePublic]]:
    results = fetch_all(
        plan.requests, timeout=deps.settings.connector_timeout_seconds, pool=deps.connectors.pool
    )
    secrets = set(plan.secrets)
    records: dict[str, list[DisclosedRecord]] = {c: [] for c in permitted}
    sources: dict[str, SourcePublic] = {}
    for agency_id in sorted(results):
        result = results[agency_id]
        sources[agency_id] = SourcePublic(status=result.status, error=result.error)
        for record in result.records.records:
            # A connector that returns a category it was not asked for is ignored, not trusted.
            if record.category in records:
                records[record.category].append(
                    DisclosedRecord(source=agency_id, fields=_scrub(dict(record.fields), secrets))
                )
    return records, sources


def request_disclosure(
    *,
    deps: Deps,
    principal: Principal,
    case_id: str,
    request: DisclosureCreate,
    now: datetime,
) -> DisclosurePublic:
    """Decide, fetch, log, answer.

    Raises Forbidden (not an agency system), NotFound (no such case, or a case of a panel the
    agency is not a member of — the denial is still logged), PolicyDenied (with reasons, logged)
    or AuditUnavailable (nothing disclosed).
    """
    # The subject's data key is read with the case and unwrapped once, for the identity and
    # the local identifiers; it is forgotten when the request is done.
    with subject_keys.keys_remembered(deps.session):
        return _disclose(deps=deps, principal=principal, case_id=case_id, request=request, now=now)


def _disclose(
    *,
    deps: Deps,
    principal: Principal,
    case_id: str,
    request: DisclosureCreate,
    now: datetime,
) -> DisclosurePublic:
    session, keyring = deps.session, deps.keyring
    # What the decision and the fetch plan need is read in one step that only reads (see
    # `reads_only`), which hands the connection back before the slow fetch: no lock or
    # connection is held across it.
    with reads_only(session):
        case = disclosure_reads.read_case(session, case_id=case_id, agency_id=principal.agency_id)
        if case is None:
            raise NotFound("case not found")
        if principal.kind != "agency" or principal.agency_id is None:
            # A person of another panel is not told the case exists (panel isolation).
            if case.panel_id not in principal.panels:
                raise NotFound("case not found")
            raise Forbidden("disclosures are requested by agency systems")
        decision_id = str(uuid.uuid4())
        subject_ref = subjects.audit_ref(keyring, subject_id=case.subject_id)
        policy_input = build_policy_input(
            deps=deps, principal=principal, case=case, request=request, now=now
        )
        decision = _decide(deps, policy_input)
        permitted = sorted(set(decision.permitted_categories))
        plan = _plan_fetch(deps, case, permitted) if decision.allow else None
    body = _entry_body(
        principal=principal,
        case=case,
        subject_ref=subject_ref,
        request=request,
        decision=decision,
        decision_id=decision_id,
    )
    # The decision record goes in with whichever entry (denial or disclosure) is written, in
    # the audit writer's transaction: the two are durable together or not at all.
    record, body["decision_digest"] = decisions.record(
        decision_id=decision_id,
        policy_input=policy_input,
        decision=decision,
        case_id=case.id,
        agency_id=principal.agency_id,
        now=now,
    )
    writer = audit_writer.for_session(session=session, settings=deps.settings, keyring=keyring)
    if plan is None:
        writer.append(kind="denial", body=body, now=now, rows=[record])
        if case.panel_id not in principal.panels:
            # The caller may not even know the case exists: answer as if it did not.
            raise NotFound("case not found")
        raise PolicyDenied(
            "the request is not covered by policy",
            decision_id=decision_id,
            reasons=[r.model_dump() for r in decision.reasons],
        )
    records, sources = _fetch(deps, plan, permitted)
    pseudonym = subjects.pseudonym_for(
        keyring, domain=subjects.agency_domain(principal.agency_id), subject_id=case.subject_id
    )
    payload = {
        "case_id": case.id,
        "subject": pseudonym,
        "purpose": request.purpose,
        "permitted_categories": permitted,
        "records": {c: [r.model_dump() for r in rs] for c, rs in records.items()},
    }
    payload_digest = audit.digest(payload)
    body |= {
        "categories_disclosed": permitted,
        "payload_digest": payload_digest,
        "sources": {a: s.status for a, s in sources.items()},
        "obligations": sorted(decision.obligations),
    }
    if request.break_glass:
        # Durable before the entry is even tried, so the window is queued for review even if
        # the log then refuses the entry.
        breakglass.open_window(
            session=session,
            case_id=case.id,
            agency_id=principal.agency_id,
            decision_id=decision_id,
            now=now,
        )
        audit.commit(session=session)
    signer = audit_checkpoints.signer_for(keyring=keyring, settings=deps.settings)
    # The batch that makes the entry durable also signs a checkpoint covering it, so the
    # receipt below finds one instead of each request signing its own.
    entry = writer.append(kind="disclosure", body=body, now=now, checkpoint=True, rows=[record])
    receipt = receipts.issue(
        session=session,
        signer=signer,
        entry=entry,
        decision_id=decision_id,
        payload_digest=payload_digest,
        now=now,
    )
    # Hand the connection back now rather than when the request is torn down: the requests
    # of one batch are released together and all need one here.
    session.commit()
    return DisclosurePublic(
        decision_id=decision_id,
        case_id=case.id,
        subject=pseudonym,
        purpose=request.purpose,
        legal_basis=decision.legal_basis,
        permitted_categories=permitted,
        obligations=list(decision.obligations),
        reasons=[r.model_dump() for r in decision.reasons],
        policy_revision=decision.revision,
        records=records,
        sources=sources,
        complete=all(s.status == "ok" for s in sources.values()),
        audit_index=entry.seq,
        receipt=receipt,
    )
