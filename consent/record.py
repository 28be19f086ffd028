"""A consent record as ISO/IEC TS 27560 and the Kantara consent receipt describe it, and its
lifecycle: given or refused, then withdrawn, expired or superseded — never edited, never deleted.

Every change returns a new record with one more entry in its append-only history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from consent.errors import ConsentGiverError, ConsentStateError
from consent.terms import ConsentTerms

Giver = Literal["subject", "parent", "guardian", "representative"]
Method = Literal["written", "recorded_verbal", "digital"]
State = Literal["active", "withdrawn", "expired", "superseded", "refused"]

# Who may consent for a subject below the age of consent.
PARENTAL_GIVERS: frozenset[str] = frozenset({"parent", "guardian"})


@dataclass(frozen=True)
class Change:
    """One line of a record's history: who moved it to which state, when and why."""

    at: datetime
    actor: str
    state: State
    reason: str


@dataclass(frozen=True)
class ConsentRecord:
    id: str
    version: int
    subject_ref: str  # the hub's internal subject reference, never an identity
    case_id: str
    controller: str  # the panel
    given_by: Giver
    relationship: str | None  # e.g. "mother" when given_by is parent; None for the subject
    recipients: frozenset[str]
    purposes: frozenset[str]
    categories: frozenset[str]
    explicit: bool  # explicit consent, needed for special categories such as health
    method: Method
    evidence_ref: str | None  # a document id or the hash of the signed form, never the scan
    notice_version: str
    given_at: datetime
    valid_from: datetime
    valid_until: datetime | None
    state: State
    history: tuple[Change, ...] = field(default=())

    def terms(self) -> ConsentTerms:
        return ConsentTerms(
            recipients=self.recipients,
            purposes=self.purposes,
            categories=self.categories,
            valid_from=self.valid_from,
            valid_until=self.valid_until,
            state=self.state,
        )

    def in_force(self, *, now: datetime) -> bool:
        return self.terms().in_force(now=now)

    def same_scope(self, other: ConsentRecord) -> bool:
        """Same case, recipients and purposes: the newer statement replaces the older one,
        whatever categories either names (a narrower new consent narrows what is shared)."""
        return (
            self.case_id == other.case_id
            and self.recipients == other.recipients
            and self.purposes == other.purposes
        )

    def _moved(self, *, state: State, actor: str, reason: str, now: datetime) -> ConsentRecord:
        change = Change(at=now, actor=actor, state=state, reason=reason)
        return replace(self, state=state, version=self.version + 1, history=(*self.history, change))

    def withdraw(self, *, actor: str, reason: str, now: datetime) -> ConsentRecord:
        """Withdrawn from `now` on. Raises ConsentStateError unless the record is active."""
        if self.state != "active":
            raise ConsentStateError(
                f"only an active consent can be withdrawn, this one is {self.state}"
            )
        if not reason.strip():
            raise ConsentStateError("a withdrawal needs a reason")
        return self._moved(state="withdrawn", actor=actor, reason=reason, now=now)

    def expire(self, *, now: datetime) -> ConsentRecord:
        """Mark an active consent whose window has ended as expired.

        Raises ConsentStateError if it is not active or not yet due.
        """
        if self.state != "active":
            raise ConsentStateError(f"only an active consent can expire, this one is {self.state}")
        if self.valid_until is None or now < self.valid_until:
            raise ConsentStateError("the consent is not due to expire yet")
        return self._moved(state="expired", actor="hub", reason="validity ended", now=now)

    def supersede(self, *, by: ConsentRecord, actor: str, now: datetime) -> ConsentRecord:
        """Replaced by a newer consent of the same scope.

        Raises ConsentStateError unless this record is active and `by` has the same scope.
        """
        if self.state != "active":
            raise ConsentStateError(
                f"only an active consent can be superseded, this one is {self.state}"
            )
        if not self.same_scope(by):
            raise ConsentStateError("a consent is superseded only by one of the same scope")
        return self._moved(
            state="superseded", actor=actor, reason=f"superseded by {by.id}", now=now
        )


def check_giver(*, given_by: str, subject_age: int | None, age_of_consent: int) -> None:
    """Below the age of consent only a parent or guardian may give it. An unknown age is
    treated as below it, the safer reading.

    Raises ConsentGiverError naming the rule.
    """
    minor = subject_age is None or subject_age < age_of_consent
    if minor and given_by not in PARENTAL_GIVERS:
        raise ConsentGiverError(
            f"the subject is under the age of consent ({age_of_consent}): "
            "only a parent or guardian may give it"
        )


def due_to_expire(records: Iterable[ConsentRecord], *, now: datetime) -> list[ConsentRecord]:
    return [
        r
        for r in records
        if r.state == "active" and r.valid_until is not None and now >= r.valid_until
    ]


def coverage(records: Iterable[ConsentRecord], *, now: datetime) -> frozenset[tuple[str, str, str]]:
    """What the in-force consents allow together, as (recipient, purpose, category) triples.

    Each consent contributes only its own combinations, so two consents never combine into one
    that neither gave (a school's education consent and the police's contact consent do not
    let the school see contact details).
    """
    return frozenset(
        (recipient, purpose, category)
        for record in records
        if record.in_force(now=now)
        for recipient in record.recipients
        for purpose in record.purposes
        for category in record.categories
    )
