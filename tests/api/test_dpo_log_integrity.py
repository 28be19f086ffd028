"""The DPO's view of the log: one decision's entry and receipt, its inclusion in the latest
checkpoint checked with the real proof verification, and a full verification that names a
tampered entry."""

from __future__ import annotations

import pytest

from hub.audit.verifier import verify_receipt
from hub.errors import Forbidden, NotFound
from hub.services import audit_checkpoints, log_integrity
from tests.api.conftest import Hub
from tests.api.flows import case_in_assessment, disclose, record_consent
from tests.api.test_dpo_statistics import person
from tests.audit.tampering import tamper


def test_a_disclosures_detail_carries_a_receipt_that_verifies(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id, categories=["education"])
    answer = disclose(hub, case_id, categories=["education"]).json()

    with hub.session() as session:
        detail = log_integrity.decision_detail(
            session=session,
            keyring=hub.state.keyring,
            settings=hub.settings,
            principal=person(hub, "dpo"),
            decision_id=answer["decision_id"],
            now=hub.now[0],
        )
        keys, origin = audit_checkpoints.verifier_keys(
            keyring=hub.state.keyring, settings=hub.settings
        )

    assert detail.entry.seq == answer["audit_index"]
    assert detail.summary.categories_permitted == ["education"]
    assert detail.receipt is not None
    assert detail.receipt.model_dump() == answer["receipt"]
    verified = verify_receipt(detail.receipt.model_dump(), key=keys[0], origin=origin)
    assert verified.decision_id == answer["decision_id"]


def test_inclusion_of_a_denial_signs_a_checkpoint_when_none_covers_it(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    denied = disclose(hub, case_id, categories=["police_contact"]).json()["error"]
    decision_id = denied["details"]["decision_id"]

    with hub.session() as session:
        outcome = log_integrity.decision_inclusion(
            session=session,
            keyring=hub.state.keyring,
            settings=hub.settings,
            principal=person(hub, "dpo"),
            decision_id=decision_id,
            now=hub.now[0],
        )
        latest = audit_checkpoints.latest(session=session)

    assert outcome.ok and outcome.problem is None
    assert latest is not None and latest.tree_size == outcome.tree_size > outcome.index


def test_a_changed_entry_fails_inclusion_and_verification(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id, categories=["education"])
    answer = disclose(hub, case_id, categories=["education"]).json()
    tamper(
        hub.state.engine,
        [
            (
                "UPDATE audit_entry SET body = replace(body, 'education', 'health') "
                "WHERE seq = :seq",
                {"seq": answer["audit_index"]},
            )
        ],
    )
    dpo = person(hub, "dpo")

    with hub.session() as session:
        inclusion = log_integrity.decision_inclusion(
            session=session,
            keyring=hub.state.keyring,
            settings=hub.settings,
            principal=dpo,
            decision_id=answer["decision_id"],
            now=hub.now[0],
        )
        verified = log_integrity.verify_now(
            session=session, keyring=hub.state.keyring, settings=hub.settings, principal=dpo
        )

    assert not inclusion.ok
    assert inclusion.problem is not None and "does not lead to the root" in inclusion.problem
    assert not verified.ok and verified.problem is not None
    assert str(answer["audit_index"]) in verified.problem


def test_only_the_panels_dpo(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    denied = disclose(hub, case_id, categories=["police_contact"]).json()["error"]
    with hub.session() as session, pytest.raises(NotFound, match="decision not found"):
        log_integrity.decision_detail(
            session=session,
            keyring=hub.state.keyring,
            settings=hub.settings,
            principal=person(hub, "coordinator"),
            decision_id=denied["details"]["decision_id"],
            now=hub.now[0],
        )
    with hub.session() as session, pytest.raises(Forbidden):
        log_integrity.verify_now(
            session=session,
            keyring=hub.state.keyring,
            settings=hub.settings,
            principal=person(hub, "coordinator"),
        )
