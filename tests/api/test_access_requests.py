"""Access requests: an agency asks, the coordinator approves (a grant, capped by the profile)
or refuses with a reason; the grant's expiry is exact to the second and revocation immediate."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from hub.storage.models import AuditEntry
from tests.api.conftest import POLICE, SCHOOL, Hub
from tests.api.flows import case_in_assessment, disclose, later, pin_clock

JUSTIFICATION = "The school's attendance record is needed for the risk assessment meeting."


def ask(hub: Hub, case_id: str, *, agency: str = SCHOOL, **overrides: Any) -> Any:
    body = {
        "purpose": "risk_assessment",
        "categories": ["education"],
        "justification": JUSTIFICATION,
        **overrides,
    }
    return hub.client.post(
        f"/v1/cases/{case_id}/access-requests", headers=hub.agency_headers(agency), json=body
    )


def decide(hub: Hub, request_id: str, **body: Any) -> Any:
    return hub.client.post(
        f"/v1/access-requests/{request_id}/decision",
        headers=hub.user_headers("coordinator"),
        json=body,
    )


def approve(hub: Hub, request_id: str, *, days: float = 7) -> dict[str, Any]:
    expires = hub.now[0] + timedelta(days=days)
    response = decide(hub, request_id, decision="approve", expires_at=expires.isoformat())
    assert response.status_code == 200, response.text
    return dict(response.json())


def kinds(hub: Hub) -> list[str]:
    with hub.session() as session:
        rows = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all()
        return [row.kind for row in rows]


def test_approval_creates_a_grant_and_the_next_disclosure_is_allowed(hub: Hub) -> None:
    pin_clock(hub)
    case_id = case_in_assessment(hub)
    assert disclose(hub, case_id).status_code == 403

    asked = ask(hub, case_id)
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert request["state"] == "pending"
    assert request["justification"] == JUSTIFICATION
    assert disclose(hub, case_id).status_code == 403  # asking is not getting

    decided = approve(hub, request["id"])
    assert decided["state"] == "approved"
    assert decided["decided_by"] == "user:coordinator"
    assert decided["grant"]["agency"] == SCHOOL
    assert decided["grant"]["purposes"] == ["risk_assessment"]
    assert decided["grant"]["categories"] == ["education"]
    allowed = disclose(hub, case_id)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["permitted_categories"] == ["education"]
    assert {"access_requested", "access_request_decided", "grant_created"} <= set(kinds(hub))
    # The audit log holds references, never the justification's words.
    with hub.session() as session:
        bodies = [row.body for row in session.exec(select(AuditEntry)).all()]
    assert not any("attendance record" in body for body in bodies)


def test_grant_expiry_is_exact_to_the_second(hub: Hub) -> None:
    pin_clock(hub)
    case_id = case_in_assessment(hub)
    request = ask(hub, case_id).json()
    approve(hub, request["id"], days=1)
    later(hub, timedelta(days=1, seconds=-1))
    assert disclose(hub, case_id).status_code == 200
    later(hub, timedelta(seconds=2))
    denied = disclose(hub, case_id)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "denied"


def test_not_before_holds_the_grant_back(hub: Hub) -> None:
    pin_clock(hub)
    case_id = case_in_assessment(hub)
    request = ask(hub, case_id).json()
    start = hub.now[0] + timedelta(hours=1)
    response = decide(
        hub,
        request["id"],
        decision="approve",
        not_before=start.isoformat(),
        expires_at=(start + timedelta(days=1)).isoformat(),
    )
    assert response.status_code == 200, response.text
    assert disclose(hub, case_id).status_code == 403
    later(hub, timedelta(hours=1))
    assert disclose(hub, case_id).status_code == 200


def test_revocation_is_effective_at_once(hub: Hub) -> None:
    pin_clock(hub)
    case_id = case_in_assessment(hub)
    decided = approve(hub, ask(hub, case_id).json()["id"])
    assert disclose(hub, case_id).status_code == 200
    revoked = hub.client.post(
        f"/v1/grants/{decided['grant']['id']}/revoke",
        headers=hub.user_headers("coordinator"),
        json={"reason": "the meeting is over"},
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["state"] == "revoked"
    assert disclose(hub, case_id).status_code == 403


def test_refusal_needs_a_reason_and_grants_nothing(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    request = ask(hub, case_id).json()
    no_reason = decide(hub, request["id"], decision="refuse")
    assert no_reason.status_code == 422
    assert no_reason.json()["error"]["message"] == "a refusal needs a reason"
    refused = decide(hub, request["id"], decision="refuse", reason="Education is not needed yet.")
    assert refused.status_code == 200, refused.text
    assert refused.json()["state"] == "refused"
    assert refused.json()["reason"] == "Education is not needed yet."
    assert refused.json()["grant"] is None
    assert disclose(hub, case_id).status_code == 403
    again = decide(hub, request["id"], decision="refuse", reason="again")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"


def test_approval_is_capped_by_the_profile(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    request = ask(hub, case_id).json()
    too_long = decide(
        hub,
        request["id"],
        decision="approve",
        expires_at=(hub.now[0] + timedelta(days=91)).isoformat(),
    )
    assert too_long.status_code == 422
    assert "at most 90 days" in too_long.json()["error"]["message"]
    without_expiry = decide(hub, request["id"], decision="approve")
    assert without_expiry.status_code == 422
    assert without_expiry.json()["error"]["message"] == "an approval needs expires_at"
    # Neither attempt decided anything.
    assert approve(hub, request["id"], days=90)["state"] == "approved"


def test_who_may_ask_decide_and_list(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    as_coordinator = hub.client.post(
        f"/v1/cases/{case_id}/access-requests",
        headers=hub.user_headers("coordinator"),
        json={"purpose": "risk_assessment", "categories": ["education"], "justification": "x"},
    )
    assert as_coordinator.status_code == 403
    school = ask(hub, case_id).json()
    police = ask(hub, case_id, agency=POLICE, categories=["police_contact"]).json()
    by_agency = hub.client.post(
        f"/v1/access-requests/{school['id']}/decision",
        headers=hub.agency_headers(SCHOOL),
        json={"decision": "refuse", "reason": "no"},
    )
    assert by_agency.status_code == 403
    by_dpo = hub.client.post(
        f"/v1/access-requests/{school['id']}/decision",
        headers=hub.user_headers("dpo"),
        json={"decision": "refuse", "reason": "no"},
    )
    assert by_dpo.status_code == 403

    own = hub.client.get(
        f"/v1/cases/{case_id}/access-requests", headers=hub.agency_headers(SCHOOL)
    ).json()
    assert [r["id"] for r in own["data"]] == [school["id"]]
    every = hub.client.get(
        f"/v1/cases/{case_id}/access-requests", headers=hub.user_headers("coordinator")
    ).json()
    assert {r["id"] for r in every["data"]} == {school["id"], police["id"]}
    assert every["count"] == 2
    unknown = decide(hub, "no-such-request", decision="refuse", reason="x")
    assert unknown.status_code == 404


def test_bad_requests_are_refused_with_the_field_named(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    unknown_field = ask(hub, case_id, extra="x")
    assert unknown_field.status_code == 422
    bad_category = ask(hub, case_id, categories=["religion"])
    assert bad_category.status_code == 422
    assert "categories" in json.dumps(bad_category.json()["error"]["details"])
    empty = ask(hub, case_id, justification="")
    assert empty.status_code == 422
