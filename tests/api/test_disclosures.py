"""The spine over HTTP: policy decision, real connectors, pseudonyms, audit before answer."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from hub.errors import AuditUnavailable
from hub.policy import PolicyEngineError
from hub.services import audit
from hub.storage.models import AuditEntry
from tests.api.conftest import POLICE, SCHOOL, SOCIAL, Hub
from tests.api.flows import case_in_assessment, disclose, grant, later, record_consent, refer_alex

ALL_LOCAL_IDS = ("NTP-1042", "CS-88-301", "NA-2231", "BP-017")


def entries(hub: Hub) -> list[AuditEntry]:
    with hub.session() as session:
        return list(session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all())


def last_body(hub: Hub) -> dict[str, Any]:
    return dict(json.loads(entries(hub)[-1].body))


def test_allowed_request_returns_exactly_the_permitted_categories(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)

    response = disclose(hub, case_id, categories=["education", "social_care"])

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["permitted_categories"] == ["education", "social_care"]
    assert set(body["records"]) == {"education", "social_care"}
    assert body["legal_basis"] == "consent"
    assert {r["source"] for r in body["records"]["education"]} == {SCHOOL}
    assert {r["source"] for r in body["records"]["social_care"]} == {SOCIAL}
    assert body["records"]["education"] and body["records"]["social_care"]
    # Only the sources holding a permitted category were asked, and both answered.
    assert body["sources"] == {
        SCHOOL: {"status": "ok", "error": None},
        SOCIAL: {"status": "ok", "error": None},
    }
    assert body["complete"] is True


def test_only_requester_domain_pseudonyms_leave(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)
    school_view = hub.client.get(f"/v1/cases/{case_id}", headers=hub.agency_headers(SCHOOL))
    police_view = hub.client.get(f"/v1/cases/{case_id}", headers=hub.agency_headers(POLICE))

    response = disclose(hub, case_id, categories=["education", "social_care"])

    assert response.status_code == 200
    text = response.text
    body = response.json()
    assert body["subject"].startswith("v1.")
    assert body["subject"] == school_view.json()["subject"]
    assert body["subject"] != police_view.json()["subject"]
    for local_id in ALL_LOCAL_IDS:
        assert local_id not in text
    for name in ("Alex", "Example", "2011-03-14"):
        assert name not in text  # identity was not asked for


def test_third_parties_and_unmapped_fields_never_leave(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)

    body = disclose(hub, case_id, categories=["education", "social_care"]).json()

    for record in body["records"]["education"]:
        assert record["fields"].get("teacher_name", "[redacted]") == "[redacted]"
        assert "pupil_id" not in record["fields"]
    for record in body["records"]["social_care"]:
        assert record["fields"].get("allocated_worker", "[redacted]") == "[redacted]"
        assert "case_ref" not in record["fields"]
    allowed_keys = {"source", "fields"}
    assert all(set(r) == allowed_keys for rs in body["records"].values() for r in rs)


def test_disclosure_is_logged_before_the_answer_with_its_digest(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)
    before = len(entries(hub))

    body = disclose(hub, case_id, categories=["education"]).json()

    after = entries(hub)
    assert len(after) == before + 1
    logged = json.loads(after[-1].body)
    assert after[-1].kind == "disclosure"
    assert after[-1].seq == body["audit_index"]
    assert logged["decision"] == "allow"
    assert logged["decision_id"] == body["decision_id"]
    assert logged["categories_disclosed"] == ["education"]
    assert logged["policy_revision"] == body["policy_revision"]
    payload = {
        "case_id": case_id,
        "subject": body["subject"],
        "purpose": "risk_assessment",
        "permitted_categories": body["permitted_categories"],
        "records": body["records"],
    }
    assert logged["payload_digest"] == audit.digest(payload)
    # No personal data in the entry: only references and the audit-domain pseudonym.
    for secret in (*ALL_LOCAL_IDS, "Alex", "Example", body["subject"]):
        assert secret not in after[-1].body


def test_receipt_is_signed_by_the_hub_and_names_the_entry(hub: Hub) -> None:
    from hub.audit.verifier import VerifierKey, entry_bytes, leaf_hash, verify_receipt

    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)
    body = disclose(hub, case_id).json()
    key = VerifierKey.from_text(hub.client.get("/v1/audit/key").text)

    receipt = verify_receipt(body["receipt"], key=key)

    logged = entries(hub)[-1]
    assert receipt.decision_id == body["decision_id"]
    assert receipt.index == body["audit_index"] - 1 == logged.seq - 1
    assert receipt.payload_digest == json.loads(logged.body)["payload_digest"]
    assert receipt.leaf_hash == leaf_hash(
        entry_bytes(seq=logged.seq, kind=logged.kind, at=audit.rfc3339(logged.at), body=logged.body)
    )
    assert receipt.checkpoint.tree_size >= logged.seq


def test_non_member_agency_is_denied_and_told_nothing(hub: Hub) -> None:
    from tests.api.outsiders import add_outsider_agency

    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)
    headers = add_outsider_agency(hub)
    before = len(entries(hub))

    response = hub.client.post(
        f"/v1/cases/{case_id}/disclosures",
        headers=headers,
        json={"purpose": "risk_assessment", "categories": ["education"]},
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert len(entries(hub)) == before + 1
    logged = last_body(hub)
    assert logged["decision"] == "deny"
    assert "not_panel_member" in logged["reasons"]


def test_purpose_not_allowed_at_stage_is_denied(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]  # still `referred`: only screening is allowed
    before = len(entries(hub))

    response = disclose(hub, case_id, purpose="risk_assessment", categories=["education"])

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "denied"
    assert "purpose_not_allowed_at_stage" in {r["code"] for r in error["reasons"]}
    assert error["details"]["decision_id"]
    assert len(entries(hub)) == before + 1
    assert last_body(hub)["decision"] == "deny"


def test_category_not_covered_is_denied_and_named(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id, categories=["education"])

    response = disclose(hub, case_id, categories=["education", "police_contact"])

    assert response.status_code == 403
    reasons = response.json()["error"]["reasons"]
    assert any(
        r["code"] == "category_not_covered" and "police_contact" in r["message"] for r in reasons
    )
    assert "records" not in response.json()


def test_grant_covers_until_it_expires(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    grant(hub, case_id, expires_at=hub.now[0] + timedelta(hours=1))

    allowed = disclose(hub, case_id, categories=["education"])
    later(hub, timedelta(hours=2))
    denied = disclose(hub, case_id, categories=["education"])

    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["legal_basis"] == "public_task"
    assert denied.status_code == 403
    assert "category_not_covered" in {r["code"] for r in denied.json()["error"]["reasons"]}


def test_withdrawn_consent_no_longer_covers(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    consent = record_consent(hub, case_id)
    assert disclose(hub, case_id).status_code == 200

    withdrawn = hub.client.post(
        f"/v1/consents/{consent['id']}/withdraw",
        headers=hub.user_headers("coordinator"),
        json={"reason": "parent withdrew consent"},
    )
    later(hub, timedelta(seconds=1))

    assert withdrawn.status_code == 200
    assert disclose(hub, case_id).status_code == 403


class _BrokenPolicy:
    revision = "broken"

    def decide(self, policy_input: Any) -> Any:
        raise PolicyEngineError("engine crashed")

    def close(self) -> None:
        pass


def test_policy_engine_failure_fails_closed(make_hub: Any) -> None:
    hub = make_hub()
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)
    broken = make_hub(policy=_BrokenPolicy())
    before = len(entries(broken))

    response = disclose(broken, case_id)

    assert response.status_code == 403
    assert [r["code"] for r in response.json()["error"]["reasons"]] == ["policy_engine_error"]
    assert len(entries(broken)) == before + 1
    assert last_body(broken)["decision"] == "deny"


def test_one_audit_entry_per_decision(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id, categories=["education"])
    counts = [len(entries(hub))]
    for categories in (["education"], ["police_contact"], ["education"], ["social_care"]):
        disclose(hub, case_id, categories=categories)
        counts.append(len(entries(hub)))
    assert [b - a for a, b in itertools.pairwise(counts)] == [1, 1, 1, 1]
    kinds = [e.kind for e in entries(hub)[-4:]]
    assert kinds == ["disclosure", "denial", "disclosure", "denial"]


def test_audit_failure_means_nothing_is_disclosed(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)
    before = len(entries(hub))
    real_write = audit.write_entries

    # The disclosure's entry goes through the group-commit writer, which writes every batch
    # with `write_entries`; fail exactly the batches that carry a disclosure.
    def failing_write(connection: Any, pending: Any, **kwargs: Any) -> Any:
        if any(entry.kind == "disclosure" for entry in pending):
            raise AuditUnavailable("audit entry could not be written")
        return real_write(connection, pending, **kwargs)

    monkeypatch.setattr("hub.services.audit.write_entries", failing_write)
    response = disclose(hub, case_id)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "audit_unavailable"
    assert "records" not in response.text
    assert len(entries(hub)) == before


def test_failing_source_gives_a_partial_answer_that_says_so(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)
    # Stop the REST source systems: children's services becomes unreachable.
    hub.sources.stop()

    response = disclose(hub, case_id, categories=["education", "social_care"])

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sources"][SCHOOL]["status"] == "ok"
    assert body["sources"][SOCIAL]["status"] == "failed"
    assert body["complete"] is False
    assert body["records"]["social_care"] == []
    assert last_body(hub)["sources"] == {SCHOOL: "ok", SOCIAL: "failed"}
