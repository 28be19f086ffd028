"""The coordinator's workflow steps over HTTP, shared by the workflow, profile and retention
tests: service directory, screening, assessment, intervention plan, closing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hub.services import profiles
from tests.api.conftest import PANEL, SCHOOL, SOCIAL, YOUTH, Hub
from tests.api.flows import record_consent


def coordinator(hub: Hub) -> dict[str, str]:
    return hub.user_headers("coordinator")


def add_service(hub: Hub, **overrides: Any) -> dict[str, Any]:
    body = {
        "name": "Northtown Youth Counselling",
        "kind": "counselling",
        "contact": "intake@counselling.northtown.example",
        **overrides,
    }
    response = hub.client.post(f"/v1/panels/{PANEL}/services", headers=coordinator(hub), json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def checklist(profile: str, *, answer: bool = True) -> dict[str, bool]:
    return {item: answer for item in profiles.screening_checklist(profile)}


def screen(hub: Hub, case_id: str, **body: Any) -> Any:
    return hub.client.post(f"/v1/cases/{case_id}/screening", headers=coordinator(hub), json=body)


def to_assessment(hub: Hub, case_id: str, profile: str) -> dict[str, Any]:
    response = screen(
        hub,
        case_id,
        checklist=checklist(profile),
        outcome="assessment",
        designated_agencies=[SCHOOL, SOCIAL],
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def assessment_body(profile: str, **overrides: Any) -> dict[str, Any]:
    return {
        "dimensions": {d: "high" for d in profiles.threshold_dimensions(profile)},
        "risk_factors": ["withdrawal_from_peers", "threats_of_violence"],
        "protective_factors": ["trusted_adult"],
        "agencies_present": [SCHOOL, SOCIAL, YOUTH],
        "threshold_met": True,
        "decision": "intervention",
        **overrides,
    }


def assess(hub: Hub, case_id: str, profile: str, **overrides: Any) -> Any:
    return hub.client.post(
        f"/v1/cases/{case_id}/assessments",
        headers=coordinator(hub),
        json=assessment_body(profile, **overrides),
    )


def plan(hub: Hub, case_id: str, consent_id: str, **overrides: Any) -> Any:
    day = hub.now[0].date()
    body = {
        "lead_agency": SOCIAL,
        "assisting_agencies": [YOUTH, SCHOOL],
        "provider": "Brightpath mentoring programme",
        "review_dates": [str(day + timedelta(days=28)), str(day + timedelta(days=56))],
        "consent_id": consent_id,
        **overrides,
    }
    return hub.client.post(
        f"/v1/cases/{case_id}/interventions", headers=coordinator(hub), json=body
    )


def voluntary_agreement(hub: Hub, case_id: str) -> str:
    consent = record_consent(
        hub,
        case_id,
        recipients=[SOCIAL, YOUTH, SCHOOL],
        purposes=["intervention_planning"],
        categories=["identity", "contact", "education", "social_care"],
    )
    return str(consent["id"])


def close(hub: Hub, case_id: str, outcome: str = "risk_reduced") -> dict[str, Any]:
    response = hub.client.post(
        f"/v1/cases/{case_id}/transitions",
        headers=coordinator(hub),
        json={"to": "closed", "reason": "plan completed", "outcome": outcome},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())
