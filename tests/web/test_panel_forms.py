"""The coordinator's forms change what agencies get through the API, exactly as the API's own
routes would: a grant made in a form lets the agency in, a revocation shuts it out again, and a
consent recorded in a form is the case's consent. Runs on every database backend."""

from __future__ import annotations

from datetime import timedelta

from tests.api.conftest import SCHOOL, Hub
from tests.api.flows import case_in_assessment
from tests.web.test_sessions import form_token, sign_in

ASK = {"purpose": "risk_assessment", "categories": ["education"]}


def ask(hub: Hub, case_id: str) -> int:
    response = hub.client.post(
        f"/v1/cases/{case_id}/disclosures", headers=hub.agency_headers(SCHOOL), json=ASK
    )
    status: int = response.status_code
    return status


def test_a_grant_made_and_revoked_in_the_forms_opens_and_shuts_the_api(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    assert ask(hub, case_id) == 403
    sign_in(hub, "coordinator")
    token = form_token(hub.client.get(f"/panel/cases/{case_id}"))
    until = (hub.now[0] + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")

    granted = hub.client.post(
        f"/panel/cases/{case_id}/grants",
        data={
            "csrf_token": token,
            "agency": SCHOOL,
            "purposes": ["risk_assessment"],
            "categories": ["education"],
            "expires_at": until,
            "legal_basis": "public_task",
        },
    )

    assert granted.status_code == 200 and "Access was granted." in granted.text
    assert "1 d 23 h" in granted.text  # the time the grant has left
    assert ask(hub, case_id) == 200

    grant_id = granted.text.split("/grants/")[1].split("/revoke")[0]
    revoked = hub.client.post(
        f"/panel/cases/{case_id}/grants/{grant_id}/revoke",
        data={"csrf_token": token, "reason": "work finished"},
    )

    assert "The grant was revoked" in revoked.text
    assert ask(hub, case_id) == 403


def test_a_consent_recorded_in_the_form_is_the_case_consent(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    sign_in(hub, "coordinator")
    token = form_token(hub.client.get(f"/panel/cases/{case_id}"))

    recorded = hub.client.post(
        f"/panel/cases/{case_id}/consents",
        data={
            "csrf_token": token,
            "decision": "given",
            "given_by": "parent",
            "relationship": "mother",
            "recipients": [SCHOOL],
            "purposes": ["risk_assessment"],
            "categories": ["education", "social_care"],
            "method": "written",
            "evidence_ref": "signed-form-0002",
        },
    )

    assert recorded.status_code == 200 and "The consent was recorded." in recorded.text
    listed = hub.client.get(
        f"/v1/cases/{case_id}/consents", headers=hub.user_headers("coordinator")
    ).json()
    assert listed["count"] == 1
    consent = listed["data"][0]
    assert (consent["state"], consent["given_by"], consent["recipients"]) == (
        "active",
        "parent",
        [SCHOOL],
    )
    assert sorted(consent["categories"]) == ["education", "social_care"]
    assert ask(hub, case_id) == 200


def test_a_consent_form_missing_its_choices_names_the_fields(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    sign_in(hub, "coordinator")
    token = form_token(hub.client.get(f"/panel/cases/{case_id}"))

    refused = hub.client.post(
        f"/panel/cases/{case_id}/consents",
        data={"csrf_token": token, "given_by": "parent", "recipients": [SCHOOL]},
    )

    assert refused.status_code == 422
    assert "purposes: List should have at least 1 item" in refused.text
    assert "categories: List should have at least 1 item" in refused.text
    assert "No consent recorded." in refused.text
