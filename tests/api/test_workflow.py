"""Screening against the profile's checklist, signposting to the panel's service directory,
the structured assessment, intervention plans with the load check, and closing with an
outcome and a retention date."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select

from hub.storage.models import AuditEntry
from tests.api.conftest import PANEL, POLICE, SOCIAL, YOUTH, Hub
from tests.api.flows import move, refer_alex
from tests.api.outsiders import add_outsider_agency
from tests.api.workflow_flows import (
    add_service,
    assess,
    checklist,
    close,
    coordinator,
    plan,
    screen,
    to_assessment,
    voluntary_agreement,
)

PROFILE = "situation_table"


def kinds(hub: Hub) -> list[str]:
    with hub.session() as session:
        return [r.kind for r in session.exec(select(AuditEntry).order_by(col(AuditEntry.seq)))]


def test_service_directory(hub: Hub) -> None:
    service = add_service(hub)
    assert service["panel"] == PANEL
    listed = hub.client.get(f"/v1/panels/{PANEL}/services", headers=hub.agency_headers(POLICE))
    assert listed.json()["data"] == [service]
    by_agency = hub.client.post(
        f"/v1/panels/{PANEL}/services",
        headers=hub.agency_headers(POLICE),
        json={"name": "x", "kind": "y", "contact": "z"},
    )
    assert by_agency.status_code == 403
    outsider = add_outsider_agency(hub)
    assert hub.client.get(f"/v1/panels/{PANEL}/services", headers=outsider).status_code == 404
    assert "service_added" in kinds(hub)


def test_screening_signposts_to_a_service_and_ends_the_case(hub: Hub) -> None:
    service = add_service(hub)
    case_id = refer_alex(hub)["id"]
    early = screen(hub, case_id, checklist=checklist(PROFILE), outcome="assessment")
    assert early.status_code == 409  # still `referred`
    move(hub, case_id, "screening")

    missing = screen(hub, case_id, checklist={}, outcome="assessment")
    assert missing.status_code == 422
    assert missing.json()["error"]["details"]["field"] == "checklist"
    not_eligible = screen(
        hub, case_id, checklist=checklist(PROFILE, answer=False), outcome="assessment"
    )
    assert not_eligible.status_code == 422
    no_service = screen(
        hub, case_id, checklist=checklist(PROFILE, answer=False), outcome="signposted"
    )
    assert no_service.json()["error"]["details"] == {"field": "service_id"}

    done = screen(
        hub,
        case_id,
        checklist=checklist(PROFILE, answer=False),
        outcome="signposted",
        service_id=service["id"],
    )
    assert done.status_code == 201, done.text
    body = done.json()
    assert body["eligible"] is False
    assert body["service"]["name"] == "Northtown Youth Counselling"
    assert body["case"]["stage"] == "signposted"
    assert body["case"]["outcome"] == "signposted"
    assert body["case"]["retain_until"] is not None
    assert {"screening", "transition"} <= set(kinds(hub))


def test_assessment_is_structured_by_the_profile(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    move(hub, case_id, "screening")
    to_assessment(hub, case_id, PROFILE)

    wrong_dims = assess(hub, case_id, PROFILE, dimensions={"engagement": "high"})
    assert wrong_dims.status_code == 422
    assert wrong_dims.json()["error"]["details"]["field"] == "dimensions"
    unknown_factor = assess(hub, case_id, PROFILE, risk_factors=["made_up_code"])
    assert unknown_factor.json()["error"]["details"]["field"] == "risk_factors"
    outsider_present = assess(hub, case_id, PROFILE, agencies_present=["southtown-police"])
    assert outsider_present.json()["error"]["details"]["field"] == "agencies_present"
    not_met = assess(hub, case_id, PROFILE, threshold_met=False)
    assert not_met.json()["error"]["details"]["field"] == "threshold_met"

    recorded = assess(hub, case_id, PROFILE)
    assert recorded.status_code == 201, recorded.text
    body = recorded.json()
    assert body["threshold"] == "acutely_elevated_risk"
    assert set(body["dimensions"]) == {
        "probability_of_harm",
        "severity_of_harm",
        "imminence",
        "multi_sector_response",
    }
    assert body["case"]["stage"] == "assessment"  # until a plan is agreed


def test_assessment_below_the_threshold_closes_the_case(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    move(hub, case_id, "screening")
    to_assessment(hub, case_id, PROFILE)
    closed = assess(hub, case_id, PROFILE, threshold_met=False, decision="closed")
    assert closed.status_code == 201, closed.text
    assert closed.json()["case"]["stage"] == "closed"
    assert closed.json()["case"]["outcome"] == "threshold_not_met"


def test_intervention_plan_with_consent_and_load_warning(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    move(hub, case_id, "screening")
    to_assessment(hub, case_id, PROFILE)
    consent_id = voluntary_agreement(hub, case_id)
    before = plan(hub, case_id, consent_id)
    assert before.status_code == 409  # no assessment decided on an intervention yet
    assert assess(hub, case_id, PROFILE).status_code == 201

    assert plan(hub, case_id, "no-such-consent").json()["error"]["details"] == {
        "field": "consent_id"
    }
    past = plan(hub, case_id, consent_id, review_dates=["2000-01-01"])
    assert past.json()["error"]["details"] == {"field": "review_dates"}
    outsider_lead = plan(hub, case_id, consent_id, lead_agency="southtown-police")
    assert outsider_lead.json()["error"]["details"] == {"field": "lead_agency"}

    first = plan(hub, case_id, consent_id)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["warnings"] == []
    assert body["case"]["stage"] == "intervention"
    assert body["case"]["lead_agency"] == SOCIAL
    assert YOUTH in body["case"]["designated_agencies"]

    second = plan(hub, case_id, consent_id, provider="Family support service")
    assert second.status_code == 201
    assert second.json()["warnings"] == []  # the situation table allows two
    third = plan(hub, case_id, consent_id, provider="Sports club mentoring")
    assert third.status_code == 201
    assert third.json()["warnings"][0].startswith("intervention_load")
    assert "intervention_planned" in kinds(hub)

    withdrawn = hub.client.post(
        f"/v1/consents/{consent_id}/withdraw",
        headers=coordinator(hub),
        json={"reason": "the family asked to stop"},
    )
    assert withdrawn.status_code == 200
    after = plan(hub, case_id, consent_id)
    assert after.status_code == 422
    assert "voluntary intervention needs an active" in after.json()["error"]["message"]


def test_closing_records_the_outcome_and_a_retention_date(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    move(hub, case_id, "screening")
    with_outcome_too_early = hub.client.post(
        f"/v1/cases/{case_id}/transitions",
        headers=coordinator(hub),
        json={"to": "assessment", "reason": "x", "outcome": "risk_reduced"},
    )
    assert with_outcome_too_early.status_code == 422
    unknown_outcome = hub.client.post(
        f"/v1/cases/{case_id}/transitions",
        headers=coordinator(hub),
        json={"to": "closed", "reason": "x", "outcome": "vanished"},
    )
    assert unknown_outcome.status_code == 422
    closed = close(hub, case_id, "referred_elsewhere")
    assert closed["outcome"] == "referred_elsewhere"
    assert closed["closed_at"] is not None
    retain = closed["retain_until"]
    assert retain[:10] == str((hub.now[0] + timedelta(days=730)).date())
    again = hub.client.post(
        f"/v1/cases/{case_id}/transitions",
        headers=coordinator(hub),
        json={"to": "screening", "reason": "reopen"},
    )
    assert again.status_code == 409
