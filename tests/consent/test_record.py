"""The consent record's lifecycle and rules, as a library."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from consent import (
    ConsentGiverError,
    ConsentRecord,
    ConsentStateError,
    check_giver,
    coverage,
    due_to_expire,
)

NOON = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def record(**overrides: Any) -> ConsentRecord:
    fields: dict[str, Any] = {
        "id": "c-1",
        "version": 1,
        "subject_ref": "s-1",
        "case_id": "case-1",
        "controller": "northtown",
        "given_by": "parent",
        "relationship": "mother",
        "recipients": frozenset({"northtown-academy"}),
        "purposes": frozenset({"risk_assessment"}),
        "categories": frozenset({"education"}),
        "explicit": False,
        "method": "written",
        "evidence_ref": "sha256:0f1e",
        "notice_version": "2026-09",
        "given_at": NOON,
        "valid_from": NOON,
        "valid_until": NOON + timedelta(days=90),
        "state": "active",
    }
    fields.update(overrides)
    return ConsentRecord(**fields)


def test_withdrawal_takes_effect_at_once_and_keeps_history() -> None:
    given = record()
    withdrawn = given.withdraw(actor="user:coordinator", reason="parent asked", now=NOON)

    assert given.in_force(now=NOON) and not withdrawn.in_force(now=NOON)
    assert withdrawn.version == given.version + 1
    assert [(c.state, c.actor) for c in withdrawn.history] == [("withdrawn", "user:coordinator")]
    assert given.history == ()  # the earlier record is untouched


def test_withdrawal_needs_an_active_consent_and_a_reason() -> None:
    with pytest.raises(ConsentStateError, match="needs a reason"):
        record().withdraw(actor="a", reason=" ", now=NOON)
    withdrawn = record().withdraw(actor="a", reason="r", now=NOON)
    with pytest.raises(ConsentStateError, match="only an active consent can be withdrawn"):
        withdrawn.withdraw(actor="a", reason="r", now=NOON)


def test_expiry_by_time() -> None:
    consent = record(valid_until=NOON + timedelta(hours=1))
    with pytest.raises(ConsentStateError, match="not due"):
        consent.expire(now=NOON)
    assert due_to_expire([consent], now=NOON + timedelta(hours=1)) == [consent]
    assert consent.expire(now=NOON + timedelta(hours=1)).state == "expired"


def test_a_new_consent_of_the_same_scope_supersedes_the_old() -> None:
    old = record()
    new = record(id="c-2", categories=frozenset({"education", "social_care"}))
    other = record(id="c-3", purposes=frozenset({"intervention_planning"}))

    assert old.supersede(by=new, actor="a", now=NOON).state == "superseded"
    with pytest.raises(ConsentStateError, match="same scope"):
        old.supersede(by=other, actor="a", now=NOON)


def test_only_a_parent_or_guardian_consents_for_a_minor() -> None:
    check_giver(given_by="parent", subject_age=14, age_of_consent=16)
    check_giver(given_by="subject", subject_age=16, age_of_consent=16)
    with pytest.raises(ConsentGiverError, match="only a parent or guardian"):
        check_giver(given_by="subject", subject_age=14, age_of_consent=16)
    with pytest.raises(ConsentGiverError, match="only a parent or guardian"):
        check_giver(given_by="subject", subject_age=None, age_of_consent=16)


def test_consents_combine_category_by_category_never_widened() -> None:
    school = record()
    police = record(
        id="c-2",
        recipients=frozenset({"northtown-police"}),
        categories=frozenset({"police_contact"}),
    )
    together = coverage([school, police], now=NOON)

    assert ("northtown-academy", "risk_assessment", "education") in together
    assert ("northtown-police", "risk_assessment", "police_contact") in together
    assert ("northtown-academy", "risk_assessment", "police_contact") not in together
    assert coverage([replace(school, state="withdrawn")], now=NOON) == frozenset()
