"""Every decision is kept with its input and output, linked from its audit entry."""

from __future__ import annotations

import json

from sqlmodel import select

from hub.services.decisions import record_digest
from hub.storage.models import AuditEntry, DecisionRecord
from tests.api.conftest import Hub
from tests.api.flows import case_in_assessment, disclose, record_consent, refer_alex


def test_allow_and_deny_are_recorded_and_linked(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id, categories=["education"])
    allowed = disclose(hub, case_id, categories=["education"]).json()
    denied = disclose(hub, case_id, categories=["police_contact"]).json()["error"]

    with hub.session() as session:
        rows = {r.decision_id: r for r in session.exec(select(DecisionRecord)).all()}
        entries = [
            json.loads(e.body)
            for e in session.exec(select(AuditEntry)).all()
            if e.kind in ("disclosure", "denial")
        ]

    assert set(rows) == {allowed["decision_id"], denied["details"]["decision_id"]}
    for entry in entries:
        row = rows[entry["decision_id"]]
        assert entry["decision_digest"] == record_digest(row)
        assert entry["policy_revision"] == row.policy_revision
    allow_row = rows[allowed["decision_id"]]
    assert allow_row.allow is True
    assert allow_row.input["request"]["categories"] == ["education"]
    assert allow_row.output["permitted_categories"] == ["education"]
    assert rows[denied["details"]["decision_id"]].allow is False


def test_records_hold_no_identifiers(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    disclose(hub, case_id, purpose="screening", categories=["behavioural_indicators"])

    with hub.session() as session:
        stored = json.dumps([r.input | r.output for r in session.exec(select(DecisionRecord))])

    assert "Alex" not in stored and "Example" not in stored and "2011-03-14" not in stored
    for local_id in ("NA-2231", "NTP-1042", "CS-88-301", "BP-017"):
        assert local_id not in stored


def test_the_differential_check_catches_a_difference(hub: Hub, opa_oracle: object) -> None:
    """Every API test ends by having real OPA re-decide its stored inputs; prove that check
    fails when an answer differs."""
    import pytest

    from tests.api.conftest import assert_opa_agrees

    case_id = case_in_assessment(hub)
    disclose(hub, case_id, categories=["education"])
    assert_opa_agrees(hub, opa_oracle)
    with hub.session() as session:
        row = session.exec(select(DecisionRecord)).one()
        row.output = {**row.output, "allow": not row.output["allow"]}
        session.add(row)
        session.commit()
        with pytest.raises(AssertionError, match="differ"):
            assert_opa_agrees(hub, opa_oracle)
        row.output = {**row.output, "allow": not row.output["allow"]}
        session.add(row)
        session.commit()
