"""Telling agencies that a consent they relied on was withdrawn or has expired.

When a consent is withdrawn or expires, every agency that holds an active grant on the case, or
was allowed a disclosure on it in the last `RECENT_DISCLOSURE_WINDOW`, gets one notification,
queued in the same transaction as the consent change (so a change is never committed without
its notifications, nor the other way round). The body carries references, the consent's scope
and the agency's own pseudonym for the person: never a name or an identifier.

Delivery (`deliver_due`) is separate and at-least-once: a signed webhook per agency
(`hub.services.webhooks`), retried with exponential back-off, then `failed` after
`MAX_ATTEMPTS`, where the panel's coordinator sees it (`list_notifications`) and can send it
again (`retry_notification`). Queueing, delivery and final failure are all in the audit log.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

import httpx
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from hub.errors import Conflict, Forbidden, NotFound
from hub.schemas import NotificationPublic, NotificationsPublic
from hub.services import audit, subjects, webhooks
from hub.services.access import require_coordinator
from hub.services.principals import COORDINATOR, Principal
from hub.storage.models import (
    AgencyWebhook,
    Case,
    Consent,
    ConsentNotification,
    DecisionRecord,
    Grant,
)
from keys import DecryptionError, KeyRing

log = logging.getLogger("hub.notifications")

Event = Literal["consent.withdrawn", "consent.expired"]
Status = Literal["pending", "delivered", "failed"]

# An agency that was allowed data this recently may still hold and use it.
RECENT_DISCLOSURE_WINDOW = timedelta(days=90)
MAX_ATTEMPTS = 6
RETRY_BASE = timedelta(seconds=1)
RETRY_CAP = timedelta(minutes=5)
# A claimed notification is due again after this, in case the worker that claimed it died.
CLAIM_LEASE = timedelta(seconds=60)
BATCH = 50

MEANING = {
    "consent.withdrawn": (
        "The person has withdrawn this consent. From effective_at, stop using data disclosed "
        "to you on the basis of this consent, and do not request more on its basis."
    ),
    "consent.expired": (
        "This consent has expired. From effective_at, stop using data disclosed to you on the "
        "basis of this consent, and do not request more on its basis."
    ),
}


def secret_associated_data(agency_id: str) -> bytes:
    return f"agency/{agency_id}/webhook_secret".encode()


def retry_delay(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: 1 s, 2 s, 4 s ... at most RETRY_CAP."""
    delay: timedelta = RETRY_BASE * 2 ** max(attempts - 1, 0)
    return min(delay, RETRY_CAP)


def agencies_to_tell(*, session: Session, case_id: str, now: datetime) -> set[str]:
    """Agencies holding an active grant on the case, or allowed a disclosure on it recently."""
    granted = session.exec(
        select(Grant.agency_id).where(
            Grant.case_id == case_id, Grant.state == "active", col(Grant.expires_at) > now
        )
    ).all()
    disclosed = session.exec(
        select(DecisionRecord.agency_id).where(
            DecisionRecord.case_id == case_id,
            col(DecisionRecord.allow).is_(True),
            col(DecisionRecord.at) >= now - RECENT_DISCLOSURE_WINDOW,
        )
    ).all()
    return set(granted) | set(disclosed)


def _body(*, keyring: KeyRing, consent: Consent, agency_id: str, event: Event) -> str:
    effective = consent.withdrawn_at if event == "consent.withdrawn" else consent.valid_until
    assert effective is not None  # a withdrawn consent has withdrawn_at, an expired one an end
    at = audit.rfc3339(effective)
    return audit.canonical_json(
        {
            "type": event,
            "timestamp": at,
            "data": {
                "case_id": consent.case_id,
                "consent_id": consent.id,
                "consent_version": consent.version,
                # The agency's own pseudonym, as its case view shows it: it can find its
                # records without the hub ever sending a name or an identifier.
                "subject": subjects.pseudonym_for(
                    keyring, domain=subjects.agency_domain(agency_id), subject_id=consent.subject_id
                ),
                "purposes": list(consent.purposes),
                "categories": list(consent.categories),
                "effective_at": at,
                "action": "stop_using_data_disclosed_on_this_consent",
                "meaning": MEANING[event],
            },
        }
    )


def enqueue_for_consent(
    *, session: Session, keyring: KeyRing, consent: Consent, event: Event, now: datetime
) -> list[ConsentNotification]:
    """Queue one notification per agency to tell, inside the caller's transaction (the caller
    commits), each with its audit entry."""
    queued: list[ConsentNotification] = []
    for agency_id in sorted(agencies_to_tell(session=session, case_id=consent.case_id, now=now)):
        exists = session.exec(
            select(ConsentNotification.id).where(
                ConsentNotification.consent_id == consent.id,
                ConsentNotification.agency_id == agency_id,
                ConsentNotification.event == event,
            )
        ).first()
        if exists is not None:
            continue
        row = ConsentNotification(
            consent_id=consent.id,
            case_id=consent.case_id,
            agency_id=agency_id,
            event=event,
            body=_body(keyring=keyring, consent=consent, agency_id=agency_id, event=event),
            status="pending",
            created_at=now,
            next_attempt_at=now,
        )
        session.add(row)
        audit.append(
            session=session,
            kind="notification_queued",
            body={
                "notification": row.id,
                "event": event,
                "case": row.case_id,
                "consent": row.consent_id,
                "agency": agency_id,
                "digest": audit.digest(row.body),
            },
            now=now,
        )
        queued.append(row)
    session.flush()
    return queued


@dataclass
class DeliveryCounts:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0

    @property
    def attempted(self) -> int:
        return self.delivered + self.retrying + self.failed


@dataclass(frozen=True)
class _Claimed:
    id: str
    agency_id: str
    body: bytes
    attempts: int


def _due_ids(session: Session, now: datetime) -> list[str]:
    return list(
        session.exec(
            select(ConsentNotification.id)
            .where(
                ConsentNotification.status == "pending",
                col(ConsentNotification.next_attempt_at) <= now,
            )
            .order_by(col(ConsentNotification.next_attempt_at), col(ConsentNotification.id))
            .limit(BATCH)
        ).all()
    )


def _claim(session: Session, notification_id: str, now: datetime) -> _Claimed | None:
    """Take one due notification for this worker (None if another worker took it first).

    The conditional update is the claim: whichever worker's update matches the row wins, on
    SQLite and PostgreSQL alike, and the lease makes it due again if that worker dies.
    """
    claimed = session.connection().execute(
        update(ConsentNotification)
        .where(
            col(ConsentNotification.id) == notification_id,
            col(ConsentNotification.status) == "pending",
            col(ConsentNotification.next_attempt_at) <= now,
        )
        .values(next_attempt_at=now + CLAIM_LEASE)
    )
    if claimed.rowcount != 1:
        session.rollback()
        return None
    row = session.get(ConsentNotification, notification_id, populate_existing=True)
    assert row is not None
    result = _Claimed(
        id=row.id, agency_id=row.agency_id, body=row.body.encode(), attempts=row.attempts
    )
    session.commit()
    return result


def _endpoint(session: Session, keyring: KeyRing, agency_id: str) -> tuple[str, bytes] | str:
    """The agency's URL and signing key, or an error code if it cannot be reached."""
    hook = session.get(AgencyWebhook, agency_id)
    if hook is None:
        return "no_webhook"
    try:
        secret = keyring.decrypt(
            hook.secret_ciphertext, associated_data=secret_associated_data(agency_id)
        ).decode()
        return hook.url, webhooks.secret_key(secret)
    except (DecryptionError, ValueError):
        return "secret_unreadable"


def _attempt(
    session: Session, keyring: KeyRing, client: httpx.Client, claimed: _Claimed, now: datetime
) -> webhooks.Outcome:
    endpoint = _endpoint(session, keyring, claimed.agency_id)
    # No transaction stays open while the network is used.
    session.rollback()
    if isinstance(endpoint, str):
        return webhooks.Outcome(error=endpoint)
    url, key = endpoint
    return webhooks.post(client, url=url, key=key, msg_id=claimed.id, now=now, body=claimed.body)


def _record(
    session: Session, claimed: _Claimed, outcome: webhooks.Outcome, now: datetime
) -> Status:
    row = session.get(ConsentNotification, claimed.id, populate_existing=True)
    assert row is not None
    row.attempts = claimed.attempts + 1
    row.last_attempt_at = now
    row.last_error = outcome.error
    refs = {
        "notification": row.id,
        "event": row.event,
        "case": row.case_id,
        "consent": row.consent_id,
        "agency": row.agency_id,
        "attempts": row.attempts,
    }
    outcome_status: Status = "pending"
    if outcome.delivered:
        outcome_status = "delivered"
        row.status, row.delivered_at, row.next_attempt_at = "delivered", now, None
        audit.append(session=session, kind="notification_delivered", body=refs, now=now)
    elif outcome.permanent or row.attempts >= MAX_ATTEMPTS:
        outcome_status = "failed"
        row.status, row.next_attempt_at = "failed", None
        audit.append(
            session=session,
            kind="notification_failed",
            body={**refs, "error": outcome.error},
            now=now,
        )
    else:
        row.next_attempt_at = now + retry_delay(row.attempts)
    session.add(row)
    audit.commit(session=session)
    return outcome_status


def deliver_due(
    *, session: Session, keyring: KeyRing, now: datetime, client: httpx.Client | None = None
) -> DeliveryCounts:
    """Send every notification due at `now` (at most BATCH), one signed POST each, and record
    how each went: delivered, due again after the back-off, or failed for good.

    Commits as it goes (each claim and each result), never holding a transaction open while
    waiting on an agency. Raises AuditUnavailable if a result cannot be made durable.
    """
    counts = DeliveryCounts()
    own_client = client is None
    http = webhooks.new_client() if client is None else client
    try:
        ids = _due_ids(session, now)
        session.rollback()
        for notification_id in ids:
            claimed = _claim(session, notification_id, now)
            if claimed is None:
                continue
            outcome = _attempt(session, keyring, http, claimed, now)
            status = _record(session, claimed, outcome, now)
            if status == "delivered":
                counts.delivered += 1
            elif status == "failed":
                counts.failed += 1
            else:
                counts.retrying += 1
    finally:
        if own_client:
            http.close()
    return counts


def _public(row: ConsentNotification) -> NotificationPublic:
    return NotificationPublic(
        id=row.id,
        event=row.event,
        case_id=row.case_id,
        consent_id=row.consent_id,
        agency=row.agency_id,
        status=row.status,
        attempts=row.attempts,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        last_attempt_at=row.last_attempt_at,
        delivered_at=row.delivered_at,
        last_error=row.last_error,
    )


def list_notifications(
    *,
    session: Session,
    principal: Principal,
    status: Status | None = None,
    case_id: str | None = None,
    limit: int = 100,
) -> NotificationsPublic:
    """The notifications on the coordinator's panel's cases, newest first, without bodies.

    Raises Forbidden for anyone but a panel coordinator.
    """
    if not principal.has_role(COORDINATOR) or principal.panel_id is None:
        raise Forbidden("only a panel coordinator may list notifications")
    query = (
        select(ConsentNotification)
        .join(Case, col(Case.id) == col(ConsentNotification.case_id))
        .where(Case.panel_id == principal.panel_id)
    )
    if status is not None:
        query = query.where(ConsentNotification.status == status)
    if case_id is not None:
        query = query.where(ConsentNotification.case_id == case_id)
    rows = session.exec(
        query.order_by(
            col(ConsentNotification.created_at).desc(), col(ConsentNotification.id)
        ).limit(limit)
    ).all()
    return NotificationsPublic(data=[_public(r) for r in rows], count=len(rows))


def retry_notification(
    *, session: Session, principal: Principal, notification_id: str, now: datetime
) -> NotificationPublic:
    """Send a failed notification again, with a fresh schedule of attempts.

    Raises NotFound (absent, or not on the coordinator's panel), Forbidden, or Conflict (not
    failed).
    """
    row = session.get(ConsentNotification, notification_id)
    case = None if row is None else session.get(Case, row.case_id)
    if row is None or case is None or case.panel_id not in principal.panels:
        raise NotFound("notification not found")
    require_coordinator(principal=principal, case=case)
    if row.status != "failed":
        raise Conflict(f"notification is {row.status}, not failed")
    row.status, row.attempts, row.next_attempt_at = "pending", 0, now
    session.add(row)
    audit.append(
        session=session,
        kind="notification_retried",
        body={"actor": principal.actor, "notification": row.id, "case": row.case_id},
        now=now,
    )
    audit.commit(session=session)
    return _public(row)


class DeliverySource(Protocol):
    """What the worker needs of a running hub (`hub.api.state.HubState` has it)."""

    @property
    def engine(self) -> Engine: ...
    @property
    def keyring(self) -> KeyRing: ...
    @property
    def clock(self) -> Callable[[], datetime]: ...


@dataclass(frozen=True)
class DeliveryDeps:
    """The parts a worker needs, for a process that has no `HubState` (e.g. `hub serve`)."""

    engine: Engine
    keyring: KeyRing
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


class DeliveryWorker:
    """A background thread that calls `deliver_due` every `interval_seconds`.

    Several workers (one per process) may run against one database: claims keep each
    notification to one sender at a time.
    """

    def __init__(self, source: DeliverySource, *, interval_seconds: float = 2.0) -> None:
        self._source = source
        self._interval = interval_seconds
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = webhooks.new_client()

    def run_once(self) -> DeliveryCounts:
        with Session(self._source.engine, expire_on_commit=False) as session:
            return deliver_due(
                session=session,
                keyring=self._source.keyring,
                now=self._source.clock(),
                client=self._client,
            )

    def _loop(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                counts = self.run_once()
            except Exception:
                # Logged without details: an exception here could carry a row's values.
                log.error("notification delivery round failed; retrying next round")
                continue
            if counts.attempted:
                log.info(
                    "notifications: %d delivered, %d to retry, %d failed",
                    counts.delivered,
                    counts.retrying,
                    counts.failed,
                )

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("delivery worker is already started")
        self._thread = threading.Thread(target=self._loop, name="hub-notifications", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop after the current round (if any) and release the HTTP client."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._client.close()


def start_delivery_worker(
    source: DeliverySource, *, interval_seconds: float = 2.0
) -> DeliveryWorker:
    """Start delivering in the background; call `.stop()` on shutdown."""
    worker = DeliveryWorker(source, interval_seconds=interval_seconds)
    worker.start()
    return worker
