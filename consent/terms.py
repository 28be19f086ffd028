"""What one consent record covers, and whether it is in force at a given instant."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

GIVERS = ("subject", "parent", "guardian", "representative")
STATES = ("active", "withdrawn", "expired", "superseded", "refused")


@dataclass(frozen=True)
class ConsentTerms:
    """The scope of a consent: who may receive which categories for which purposes, and when."""

    recipients: frozenset[str]
    purposes: frozenset[str]
    categories: frozenset[str]
    valid_from: datetime
    valid_until: datetime | None
    state: str

    def in_force(self, *, now: datetime) -> bool:
        """True only for an active consent whose validity window holds `now`.

        The window is half-open, so a consent valid until 12:00 no longer covers 12:00 itself.
        """
        if self.state != "active" or now < self.valid_from:
            return False
        return self.valid_until is None or now < self.valid_until

    def covers(self, *, recipient: str, purpose: str, category: str, now: datetime) -> bool:
        return (
            self.in_force(now=now)
            and recipient in self.recipients
            and purpose in self.purposes
            and category in self.categories
        )


def terms(
    *,
    recipients: Iterable[str],
    purposes: Iterable[str],
    categories: Iterable[str],
    valid_from: datetime,
    valid_until: datetime | None,
    state: str,
) -> ConsentTerms:
    """Build terms, checking the state and window.

    Raises ValueError for an unknown state or a window that ends before it starts.
    """
    if state not in STATES:
        raise ValueError(f"unknown consent state: {state}")
    if valid_until is not None and valid_until <= valid_from:
        raise ValueError("consent must end after it starts")
    return ConsentTerms(
        recipients=frozenset(recipients),
        purposes=frozenset(purposes),
        categories=frozenset(categories),
        valid_from=valid_from,
        valid_until=valid_until,
        state=state,
    )
