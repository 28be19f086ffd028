"""The consent registry over HTTP: records, refusals, superseding, withdrawal at once, expiry,
the minor rule, and receipts a person and an independent JWT library can check."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import jwt as pyjwt
import pytest
from sqlmodel import col, select

from hub.storage.models import AuditEntry, DecisionRecord
from tests.api.conftest import PANEL, POLICE, SCHOOL, SOCIAL, Hub
from tests.api.flows import (
    case_in_assessment,
    disclose,
    later,
    move,
    pin_clock,
    record_consent,
)


def consents(hub: Hub, case_id: str) -> list[dict[str, Any]]:
    response = hub.client.get(
        f"/v1/cases/{case_id}/consents", headers=hub.user_headers("coordinator")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == len(body["data"])
    return list(body["data"])


def audit_kinds(hub: Hub) -> list[str]:
    with hub.session() as session:
        return [e.kind for e in session.exec(select(AuditEntry).order_by(col(AuditEntry.seq)))]


def test_a_new_consent_of_the_same_scope_supersedes_the_old(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    first = record_consent(hub, case_id, categories=["education"])
    second = record_consent(hub, case_id, categories=["education", "social_care"])

    states = {c["id"]: c for c in consents(hub, case_id)}

    assert states[first["id"]]["state"] == "superseded"
    assert [h["state"] for h in states[first["id"]]["history"]] == ["active", "superseded"]
    assert states[second["id"]]["state"] == "active"
    assert disclose(hub, case_id, categories=["education", "social_care"]).status_code == 200
    assert "consent_superseded" in audit_kinds(hub)


def test_a_refusal_is_recorded_and_covers_nothing(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    refused = record_consent(hub, case_id, decision="refused")

    assert refused["state"] == "refused"
    assert disclose(hub, case_id, categories=["education"]).status_code == 403
    assert "consent_refused" in audit_kinds(hub)


def test_a_minors_own_consent_is_refused_and_a_parents_accepted(hub: Hub) -> None:
    # Robin is 14: under the situation table's age of consent (16).
    pin_clock(hub)
    referral = hub.client.post(
        "/v1/referrals",
        headers=hub.agency_headers(SCHOOL),
        json={
            "panel": PANEL,
            "subject": {
                "given_name": "Robin",
                "family_name": "Testcase",
                "date_of_birth": "2012-09-30",
                "local_id": "NA-2307",
            },
            "indicators": ["withdrawal_from_peers"],
        },
    )
    case_id = referral.json()["id"]
    body = {
        "given_by": "subject",
        "recipients": [SCHOOL],
        "purposes": ["risk_assessment"],
        "categories": ["education"],
    }
    headers = hub.user_headers("coordinator")

    own = hub.client.post(f"/v1/cases/{case_id}/consents", headers=headers, json=body)
    parent = hub.client.post(
        f"/v1/cases/{case_id}/consents",
        headers=headers,
        json={**body, "given_by": "parent", "relationship": "father"},
    )

    assert own.status_code == 422
    assert own.json()["error"]["details"] == {"field": "given_by"}
    assert "only a parent or guardian" in own.json()["error"]["message"]
    assert parent.status_code == 201, parent.text


def test_the_obtaining_agency_may_record_and_withdraw_others_may_not(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    recorded = hub.client.post(
        f"/v1/cases/{case_id}/consents",
        headers=hub.agency_headers(SOCIAL),
        json={
            "given_by": "parent",
            "recipients": [SCHOOL],
            "purposes": ["risk_assessment"],
            "categories": ["education"],
            "method": "recorded_verbal",
        },
    )
    consent_id = recorded.json()["id"]
    reason = {"reason": "parent withdrew on the phone"}

    by_police = hub.client.post(
        f"/v1/consents/{consent_id}/withdraw", headers=hub.agency_headers(POLICE), json=reason
    )
    by_social = hub.client.post(
        f"/v1/consents/{consent_id}/withdraw", headers=hub.agency_headers(SOCIAL), json=reason
    )

    assert recorded.status_code == 201, recorded.text
    assert by_police.status_code == 403
    assert by_social.status_code == 200
    assert by_social.json()["state"] == "withdrawn"
    assert [h["state"] for h in by_social.json()["history"]] == ["active", "withdrawn"]


def test_withdrawal_racing_a_disclosure_the_decision_uses_the_state_at_its_instant(
    hub: Hub,
) -> None:
    case_id = case_in_assessment(hub)
    consent = record_consent(hub, case_id)

    before = disclose(hub, case_id)
    hub.client.post(
        f"/v1/consents/{consent['id']}/withdraw",
        headers=hub.user_headers("coordinator"),
        json={"reason": "withdrawn"},
    )
    later(hub, timedelta(seconds=1))
    after = disclose(hub, case_id)

    assert before.status_code == 200 and after.status_code == 403
    with hub.session() as session:
        records = {r.decision_id: r for r in session.exec(select(DecisionRecord))}
    # Each decision's record shows which consents it saw: the audit tells which state applied.
    seen_before = records[before.json()["decision_id"]].input["consents"]
    seen_after = records[after.json()["error"]["details"]["decision_id"]].input["consents"]
    assert [c["id"] for c in seen_before] == [consent["id"]]
    assert seen_after == []
    kinds = audit_kinds(hub)
    assert kinds.index("consent_withdrawn") < len(kinds) - 1 == kinds.index("denial")


def test_consent_expires_by_time_and_the_change_is_logged(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id, valid_until=(hub.now[0] + timedelta(hours=1)).isoformat())
    assert disclose(hub, case_id).status_code == 200

    later(hub, timedelta(hours=2))
    [expired] = consents(hub, case_id)

    assert expired["state"] == "expired"
    assert [h["state"] for h in expired["history"]] == ["active", "expired"]
    assert "consent_expired" in audit_kinds(hub)
    assert disclose(hub, case_id).status_code == 403


def test_receipt_verifies_with_an_independent_jwt_library(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    consent = record_consent(
        hub, case_id, valid_until=(hub.now[0] + timedelta(days=30)).isoformat()
    )
    response = hub.client.get(
        f"/v1/consents/{consent['id']}/receipt", headers=hub.user_headers("coordinator")
    )
    token = response.json()["receipt"]
    jwks = hub.client.get("/.well-known/jwks.json").json()
    header = pyjwt.get_unverified_header(token)
    [jwk] = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    key = pyjwt.PyJWK(jwk).key

    claims = pyjwt.decode(token, key, algorithms=["ES256"])

    assert claims["consentReceiptID"] == f"{consent['id']}:1"
    assert claims["piiCategories"] == ["behavioural_indicators", "education", "social_care"]
    assert claims["recipients"] == [{"id": SCHOOL, "name": "Northtown Academy"}]
    assert claims["piiPrincipalId"].startswith("v1.")
    for secret in ("Alex", "Example", "2011-03-14", "NA-2231"):
        assert secret not in json.dumps(claims)

    head, payload, signature = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged["piiCategories"].append("health")
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
    with pytest.raises(pyjwt.InvalidSignatureError):
        pyjwt.decode(f"{head}.{forged_payload}.{signature}", key, algorithms=["ES256"])


def test_receipt_page_is_plain_words_for_the_person(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    consent = record_consent(hub, case_id)

    page = hub.client.get(
        f"/v1/consents/{consent['id']}/receipt",
        headers={**hub.user_headers("coordinator"), "Accept": "text/html"},
    )

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    text = page.text
    for words in (
        "school records",
        "Northtown Academy",
        "withdraw your consent at any time",
        "understanding the situation and the risks",
    ):
        assert words in text
    assert "Alex" not in text and "NA-2231" not in text


def test_only_coordinators_and_member_agencies_see_consents(hub: Hub) -> None:
    from tests.api.outsiders import add_outsider_agency

    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)
    dpo = hub.client.get(f"/v1/cases/{case_id}/consents", headers=hub.user_headers("dpo"))
    outsider = hub.client.get(f"/v1/cases/{case_id}/consents", headers=add_outsider_agency(hub))

    assert dpo.status_code == 403
    assert outsider.status_code == 404
    move(hub, case_id, "closed")


def test_retention_run_expires_due_consents(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from hub.cli import app
    from tests.api.flows import use_hub_env

    case_id = case_in_assessment(hub)
    record_consent(
        hub,
        case_id,
        valid_until=(hub.now[0] - timedelta(seconds=1)).isoformat(),
        valid_from=(hub.now[0] - timedelta(days=1)).isoformat(),
    )
    use_hub_env(hub, monkeypatch)

    result = CliRunner().invoke(app, ["retention", "run"])

    assert result.exit_code == 0, result.output
    assert "1 consents expired" in result.output
    assert "consent_expired" in audit_kinds(hub)


def test_withdrawal_and_disclosure_in_parallel_stay_consistent(hub: Hub) -> None:
    """Run a withdrawal and a disclosure at the same moment, several times: whichever wins,
    the decision's record shows exactly the consent state it used, and nothing else leaks."""
    import threading

    case_id = case_in_assessment(hub)
    agency = hub.agency_headers(SCHOOL)
    coordinator = hub.user_headers("coordinator")
    outcomes = []
    for _ in range(5):
        consent = record_consent(hub, case_id)
        barrier = threading.Barrier(2)
        results: dict[str, Any] = {}

        def withdraw(
            consent_id: str = consent["id"],
            out: dict[str, Any] = results,
            start: threading.Barrier = barrier,
        ) -> None:
            start.wait()
            out["withdraw"] = hub.client.post(
                f"/v1/consents/{consent_id}/withdraw",
                headers=coordinator,
                json={"reason": "withdrawn"},
            )

        def ask(out: dict[str, Any] = results, start: threading.Barrier = barrier) -> None:
            start.wait()
            out["disclose"] = hub.client.post(
                f"/v1/cases/{case_id}/disclosures",
                headers=agency,
                json={"purpose": "risk_assessment", "categories": ["education"]},
            )

        threads = [threading.Thread(target=withdraw), threading.Thread(target=ask)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results["withdraw"].status_code == 200
        answer = results["disclose"]
        decision_id = (
            answer.json()["decision_id"]
            if answer.status_code == 200
            else answer.json()["error"]["details"]["decision_id"]
        )
        with hub.session() as session:
            seen = session.get(DecisionRecord, decision_id)
            assert seen is not None
        saw_consent = consent["id"] in [c["id"] for c in seen.input["consents"]]
        assert saw_consent == (answer.status_code == 200)
        outcomes.append(answer.status_code)
        later(hub, timedelta(seconds=1))
    assert set(outcomes) <= {200, 403}
