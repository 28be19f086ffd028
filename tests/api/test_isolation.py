"""Panel isolation for every route: a coordinator or an agency of another panel is told that
any record of this panel does not exist (404, never 403). The routes are read from the app's
OpenAPI document, so a new route with a path parameter fails here until it has a sample."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from hub.services import subjects
from hub.storage.models import Case, ConsentNotification, PossibleMatch
from tests.api.conftest import PANEL, POLICE, SCHOOL, Hub
from tests.api.flows import case_in_assessment, disclose, grant, record_consent
from tests.api.outsiders import add_outsider_agency, add_outsider_user

# A valid body for each route that takes one, so the answer is about visibility, not syntax.
BODIES: dict[tuple[str, str], dict[str, Any] | None] = {
    ("get", "/v1/cases/{case_id}"): None,
    ("post", "/v1/cases/{case_id}/transitions"): {"to": "closed", "reason": "x"},
    ("post", "/v1/cases/{case_id}/consents"): {
        "given_by": "parent",
        "recipients": [SCHOOL],
        "purposes": ["risk_assessment"],
        "categories": ["education"],
    },
    ("get", "/v1/cases/{case_id}/consents"): None,
    ("post", "/v1/consents/{consent_id}/withdraw"): {"reason": "x"},
    ("get", "/v1/consents/{consent_id}/receipt"): None,
    ("post", "/v1/cases/{case_id}/grants"): {
        "agency": SCHOOL,
        "purposes": ["risk_assessment"],
        "categories": ["education"],
        "expires_at": "2099-01-01T00:00:00Z",
    },
    ("post", "/v1/grants/{grant_id}/revoke"): {"reason": "x"},
    ("post", "/v1/cases/{case_id}/disclosures"): {
        "purpose": "risk_assessment",
        "categories": ["education"],
    },
    ("post", "/v1/notifications/{notification_id}/retry"): None,
    ("post", "/v1/cases/{case_id}/access-requests"): {
        "purpose": "risk_assessment",
        "categories": ["education"],
        "justification": "x",
    },
    ("get", "/v1/cases/{case_id}/access-requests"): None,
    ("post", "/v1/access-requests/{request_id}/decision"): {
        "decision": "refuse",
        "reason": "x",
    },
    ("post", "/v1/break-glass/{window_id}/review"): {"justified": True, "note": "x"},
    ("post", "/v1/panels/{panel_id}/services"): {"name": "x", "kind": "y", "contact": "z"},
    ("get", "/v1/panels/{panel_id}/services"): None,
    ("post", "/v1/cases/{case_id}/screening"): {"checklist": {}, "outcome": "assessment"},
    ("post", "/v1/cases/{case_id}/assessments"): {
        "dimensions": {},
        "agencies_present": [SCHOOL],
        "threshold_met": True,
        "decision": "intervention",
    },
    ("post", "/v1/cases/{case_id}/interventions"): {
        "lead_agency": SCHOOL,
        "provider": "x",
        "review_dates": ["2099-01-01"],
        "consent_id": "x",
    },
    ("get", "/v1/cases/{case_id}/possible-matches"): None,
    ("post", "/v1/possible-matches/{match_id}"): {"decision": "rejected"},
    ("get", "/v1/pseudonyms/{pseudonym}/current"): None,
    ("post", "/v1/cases/{case_id}/reidentify"): {
        "reason_code": "safeguarding_action",
        "reason": "x",
    },
    ("post", "/v1/reidentifications/{request_id}/approve"): None,
    ("get", "/v1/oversight/subjects/{subject_ref}/disclosures"): None,
}
# Routes whose path parameter shares a name with another kind of record's: which record of
# `northtown_records` each takes instead.
RECORD_FOR: dict[tuple[str, str], dict[str, str]] = {
    ("post", "/v1/reidentifications/{request_id}/approve"): {"request_id": "reidentification_id"},
}


def scoped_routes(hub: Hub) -> list[tuple[str, str]]:
    paths = hub.client.get("/openapi.json").json()["paths"]
    return sorted((method, path) for path, ops in paths.items() for method in ops if "{" in path)


def northtown_records(hub: Hub) -> dict[str, str]:
    """One real record of the northtown panel for every kind of path parameter."""
    case_id = case_in_assessment(hub)
    consent = record_consent(hub, case_id)
    granted = grant(hub, case_id, expires_at=hub.now[0] + timedelta(days=1))
    asked = hub.client.post(
        f"/v1/cases/{case_id}/access-requests",
        headers=hub.agency_headers(SCHOOL),
        json=BODIES[("post", "/v1/cases/{case_id}/access-requests")],
    )
    assert asked.status_code == 201, asked.text
    glass = disclose(
        hub,
        case_id,
        agency=POLICE,
        purpose="safeguarding_emergency",
        categories=["identity"],
        break_glass=True,
        justification="Credible threat of imminent self-harm reported to the control room.",
    )
    assert glass.status_code == 200, glass.text
    window = hub.client.get(
        "/v1/break-glass", headers=hub.user_headers("dpo"), params={"status": "open"}
    ).json()["data"][0]
    # A DPO's re-identification request waits for a coordinator's approval.
    filed = hub.client.post(
        f"/v1/cases/{case_id}/reidentify",
        headers=hub.user_headers("dpo"),
        json=BODIES[("post", "/v1/cases/{case_id}/reidentify")],
    )
    assert filed.status_code == 202, filed.text
    # The subject as the school sees it: a pseudonym of the school's own domain.
    pseudonym = hub.client.get(f"/v1/cases/{case_id}", headers=hub.agency_headers(SCHOOL)).json()[
        "subject"
    ]
    with hub.session() as session:
        note = ConsentNotification(
            consent_id=consent["id"],
            case_id=case_id,
            agency_id=SCHOOL,
            event="consent.withdrawn",
            body="{}",
            status="failed",
        )
        session.add(note)
        case = session.get(Case, case_id)
        assert case is not None
        match = PossibleMatch(
            case_id=case_id, candidate_subject_id=case.subject_id, differing_field="given_name"
        )
        session.add(match)
        session.commit()
        notification_id, match_id = note.id, match.id
        subject_ref = subjects.audit_ref(hub.state.keyring, subject_id=case.subject_id)
    return {
        "case_id": case_id,
        "consent_id": consent["id"],
        "grant_id": granted["id"],
        "request_id": asked.json()["id"],
        "window_id": window["id"],
        "notification_id": notification_id,
        "panel_id": PANEL,
        "match_id": match_id,
        "pseudonym": pseudonym,
        "reidentification_id": filed.json()["request_id"],
        "subject_ref": subject_ref,
    }


@pytest.mark.parametrize("outsider", ["agency", "coordinator", "dpo"])
def test_every_scoped_route_answers_404_to_another_panel(hub: Hub, outsider: str) -> None:
    records = northtown_records(hub)
    headers = add_outsider_agency(hub) if outsider == "agency" else add_outsider_user(hub, outsider)
    answers = {}
    for method, template in scoped_routes(hub):
        chosen = {
            name: records[record] for name, record in RECORD_FOR.get((method, template), {}).items()
        }
        path = template.format_map(_Ids({**records, **chosen}))
        if (method, template) not in BODIES:
            # A route without a sample (e.g. one another branch is adding) gets an empty body
            # and made-up ids; it must at least disclose nothing. Add it to BODIES for the
            # full check.
            path = template.format_map(_Ids({}))
            response = hub.client.request(
                method.upper(), path, headers=headers, json={} if method == "post" else None
            )
            assert response.status_code >= 400, (method, template)
            continue
        body = BODIES[(method, template)]
        response = hub.client.request(method.upper(), path, headers=headers, json=body)
        if response.status_code == 404:
            assert response.json()["error"]["code"] == "not_found"
        answers[(method, template)] = response.status_code
    assert {route: code for route, code in answers.items() if code != 404} == {}


class _Ids(dict[str, str]):
    """Real ids for the known path parameters; any other parameter gets a made-up value."""

    def __missing__(self, key: str) -> str:
        return f"unknown-{key}"


def test_panel_wide_lists_show_nothing_of_another_panel(hub: Hub) -> None:
    northtown_records(hub)
    coordinator = add_outsider_user(hub, "coordinator")
    dpo = add_outsider_user(hub, "dpo")
    assert hub.client.get("/v1/break-glass", headers=dpo).json()["count"] == 0
    assert hub.client.get("/v1/notifications", headers=coordinator).json()["count"] == 0
