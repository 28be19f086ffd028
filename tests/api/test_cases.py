"""Referrals open or link cases; each caller sees only what it may."""

from __future__ import annotations

from tests.api.conftest import POLICE, SCHOOL, SOCIAL, YOUTH, Hub
from tests.api.flows import ALEX, move, refer_alex
from tests.api.outsiders import add_outsider_agency


def test_referral_opens_a_case_in_referred(hub: Hub) -> None:
    case = refer_alex(hub)

    assert case["stage"] == "referred"
    assert case["referred_by"] == SCHOOL
    assert case["indicators"] == ["expressed_support_for_violence", "withdrawal_from_peers"]
    assert case["summary"] is None  # agencies never see the free text
    assert case["subject"].startswith("v1.")


def test_second_referral_about_the_same_person_is_linked_not_duplicated(hub: Hub) -> None:
    first = refer_alex(hub, agency=SCHOOL)
    response = hub.client.post(
        "/v1/referrals",
        headers=hub.agency_headers(POLICE),
        json={
            "panel": "northtown",
            "subject": {**ALEX, "local_id": "NTP-1042", "given_name": "  ALEX "},
            "indicators": ["threats_of_violence"],
        },
    )

    assert response.status_code == 200
    assert response.json()["id"] == first["id"]


def test_each_agency_sees_its_own_pseudonym(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    seen = {
        agency: hub.client.get(f"/v1/cases/{case_id}", headers=hub.agency_headers(agency)).json()
        for agency in (POLICE, SCHOOL, SOCIAL, YOUTH)
    }
    pseudonyms = {view["subject"] for view in seen.values()}
    assert len(pseudonyms) == 4
    # Stable: asking again gives the same pseudonym.
    again = hub.client.get(f"/v1/cases/{case_id}", headers=hub.agency_headers(SCHOOL)).json()
    assert again["subject"] == seen[SCHOOL]["subject"]


def test_coordinator_sees_the_summary_and_moves_the_case(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    headers = hub.user_headers("coordinator")

    view = hub.client.get(f"/v1/cases/{case_id}", headers=headers).json()
    moved = move(hub, case_id, "screening")
    assessed = move(hub, case_id, "assessment", designated_agencies=[SCHOOL, SOCIAL])

    assert view["summary"].startswith("Concern raised")
    assert moved["stage"] == "screening"
    assert assessed["designated_agencies"] == sorted([SCHOOL, SOCIAL])


def test_intervention_needs_a_lead_agency(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    move(hub, case_id, "screening")
    move(hub, case_id, "assessment")
    headers = hub.user_headers("coordinator")

    without = hub.client.post(
        f"/v1/cases/{case_id}/transitions",
        headers=headers,
        json={"to": "intervention", "reason": "x"},
    )
    with_lead = move(hub, case_id, "intervention", lead_agency=YOUTH)

    assert without.status_code == 422
    assert with_lead["lead_agency"] == YOUTH


def test_case_of_another_panel_is_404(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    outsider = add_outsider_agency(hub)

    response = hub.client.get(f"/v1/cases/{case_id}", headers=outsider)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_dpo_cannot_move_cases(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    response = hub.client.post(
        f"/v1/cases/{case_id}/transitions",
        headers=hub.user_headers("dpo"),
        json={"to": "screening", "reason": "x"},
    )
    assert response.status_code == 403
