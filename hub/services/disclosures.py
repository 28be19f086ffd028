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

from sqlmodel import Session, col, select

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
    receipts,
    subject_keys,
    subjects,
)
from hub.services.consents import active_consents
from hub.services.grants import active_grants
from hub.services.principals import Principal
from hub.services.sources import ConnectorRegistry
from hub.storage.models import Agency, Case, Panel, PanelMembership, Subject
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
    case: Case,
    subject: Subject,
    panel: Panel,
    request: DisclosureCreate,
    now: datetime,
) -> PolicyInput:
    assert principal.agency_id is not None
    session, keyring = deps.session, deps.keyring
    agency = session.get(Agency, principal.agency_id)
    if agency is None:
        raise NotFound("case not found")
    # Decrypted once: the policy gets the age in whole years (compared with the panel
    # profile's age of consent) and the hub-wide minor flag, never the date of birth.
    subject_age = subjects.identity_of(keyring, subject).age_on(now.date())
    break_glass_since = (
        breakglass.opened_at(session=session, case_id=case.id, agency_id=principal.agency_id)
        if request.break_glass
        else None
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
        for c in active_consents(session=session, case=case)
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
        for g in active_grants(session=session, case=case, agency_id=principal.agency_id)
    ]
    return PolicyInput.model_validate(
        {
            "requester": {
                "agency": agency.id,
                "agency_kind": agency.kind,
                "client": principal.subject,
                "user": None,
                "roles": list(principal.roles),
                "panels": list(principal.panels),
            },
            "case": {
                "id": case.id,
                "panel": case.panel_id,
                "profile": panel.profile,
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
    case: Case,
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


def _holding_agencies(session: Session, case: Case) -> list[Agency]:
    """The case panel's member agencies, in one query."""
    query = (
        select(Agency)
        .join(PanelMembership, col(PanelMembership.agency_id) == col(Agency.id))
        .where(PanelMembership.panel_id == case.panel_id)
        .order_by(col(Agency.id))
    )
    return list(session.exec(query).all())


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


def _plan_fetch(deps: Deps, case: Case, permitted: list[str]) -> _FetchPlan:
    connectors = deps.connectors.holding(_holding_agencies(deps.session, case))
    wanted = {
        agency_id: tuple(c for c in permitted if c in connector.categories)
        for agency_id, connector in connectors.items()
    }
    # Every identifier is opened (one key unwrap), not just those sent: the scrub after the
    # fetch redacts any agency's identifier for the subject that a source echoes back.
    local = subjects.local_ids(
        session=deps.session, keyring=deps.keyring, subject_id=case.subject_id
    )
    requests = {
        agency_id: (
            connector,
            SourceQuery(local_id=local[agency_id], categories=wanted[agency_id]),
        )
        for agency_id, connector in connectors.items()
        if wanted[agency_id] and agency_id in local
    }
    return _FetchPlan(requests=requests, secrets=frozenset(local.values()))


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
    session = deps.session
    # The steps commit to release the database between them (never across the fetch); what
    # was read for the decision stays as read, rather than being loaded again after each one.
    # The subject's data key is unwrapped once for the identity and the local identifiers.
    expire_on_commit, session.expire_on_commit = session.expire_on_commit, False
    try:
        with subject_keys.keys_remembered(session):
            return _disclose(
                deps=deps, principal=principal, case_id=case_id, request=request, now=now
            )
    finally:
        session.expire_on_commit = expire_on_commit


def _disclose(
    *,
    deps: Deps,
    principal: Principal,
    case_id: str,
    request: DisclosureCreate,
    now: datetime,
) -> DisclosurePublic:
    session, keyring = deps.session, deps.keyring
    # The case with its subject and panel, which the policy input needs, in one round trip.
    found = session.exec(
        select(Case, Subject, Panel)
        .join(Subject, col(Subject.id) == col(Case.subject_id))
        .join(Panel, col(Panel.id) == col(Case.panel_id))
        .where(Case.id == case_id)
    ).first()
    if found is None:
        raise NotFound("case not found")
    case, subject, panel = found
    if principal.kind != "agency" or principal.agency_id is None:
        # A person of another panel is not told the case exists (panel isolation).
        if case.panel_id not in principal.panels:
            raise NotFound("case not found")
        raise Forbidden("disclosures are requested by agency systems")
    decision_id = str(uuid.uuid4())
    subject_ref = subjects.audit_ref(keyring, subject_id=case.subject_id)
    policy_input = build_policy_input(
        deps=deps,
        principal=principal,
        case=case,
        subject=subject,
        panel=panel,
        request=request,
        now=now,
    )
    decision = _decide(deps, policy_input)
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
    if not decision.allow:
        session.commit()  # ends the read transaction; nothing was written in it
        writer.append(kind="denial", body=body, now=now, rows=[record])
        if case.panel_id not in principal.panels:
            # The caller may not even know the case exists: answer as if it did not.
            raise NotFound("case not found")
        raise PolicyDenied(
            "the request is not covered by policy",
            decision_id=decision_id,
            reasons=[r.model_dump() for r in decision.reasons],
        )
    permitted = sorted(set(decision.permitted_categories))
    plan = _plan_fetch(deps, case, permitted)
    # End the read transaction before the (slow) fetch so no lock is held across it.
    session.commit()
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
