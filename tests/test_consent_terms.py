"""Consent terms: in force only while active and inside their half-open window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from consent import ConsentTerms, terms

NOON = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def make(**overrides: Any) -> ConsentTerms:
    args: dict[str, Any] = {
        "recipients": ["northtown-academy"],
        "purposes": ["risk_assessment"],
        "categories": ["education"],
        "valid_from": NOON,
        "valid_until": NOON + timedelta(days=30),
        "state": "active",
    }
    args.update(overrides)
    return terms(**args)


def test_covers_its_scope_inside_its_window() -> None:
    consent = make()
    assert consent.covers(
        recipient="northtown-academy", purpose="risk_assessment", category="education", now=NOON
    )


@pytest.mark.parametrize(
    ("overrides", "at", "field"),
    [
        ({}, NOON - timedelta(seconds=1), "before valid_from"),
        ({}, NOON + timedelta(days=30), "at valid_until (half-open)"),
        ({"state": "withdrawn"}, NOON + timedelta(hours=1), "withdrawn"),
    ],
)
def test_does_not_cover_outside_window_or_when_withdrawn(
    overrides: dict[str, object], at: datetime, field: str
) -> None:
    assert not make(**overrides).in_force(now=at), field


def test_scope_is_never_widened() -> None:
    consent = make()
    assert not consent.covers(
        recipient="northtown-police", purpose="risk_assessment", category="education", now=NOON
    )
    assert not consent.covers(
        recipient="northtown-academy", purpose="risk_assessment", category="health", now=NOON
    )


def test_bad_terms_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown consent state"):
        make(state="maybe")
    with pytest.raises(ValueError, match="must end after it starts"):
        make(valid_until=NOON)
