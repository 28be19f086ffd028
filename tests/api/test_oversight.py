"""Oversight for DPOs: every disclosure and denial of their panel, and one person's history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.api.conftest import SCHOOL, Hub
from tests.api.flows import case_in_assessment, disclose, later, record_consent
from tests.api.outsiders import add_outsider_agency


def oversight(hub: Hub, path: str, **params: Any) -> Any:
    return hub.client.get(path, headers=hub.user_headers("dpo"), params=params)


def test_dpo_sees_every_disclosure_and_denial_with_filters(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id, categories=["education"])
    allowed = disclose(hub, case_id, categories=["education"]).json()
    later(hub, timedelta(minutes=1))
    denied = disclose(hub, case_id, categories=["police_contact"]).json()["error"]

    everything = oversight(hub, "/v1/oversight/disclosures").json()
    only_denials = oversight(hub, "/v1/oversight/disclosures", decision="deny").json()
    by_agency = oversight(hub, "/v1/oversight/disclosures", agency="northtown-police").json()
    paged = oversight(hub, "/v1/oversight/disclosures", limit=1, offset=1).json()

    assert everything["count"] == 2
    assert [d["decision_id"] for d in everything["data"]] == [
        denied["details"]["decision_id"],
        allowed["decision_id"],
    ]
    [first_allow] = [d for d in everything["data"] if d["decision"] == "allow"]
    assert first_allow["agency"] == SCHOOL
    assert first_allow["categories_permitted"] == ["education"]
    assert first_allow["legal_basis"] == "consent"
    assert [d["decision"] for d in only_denials["data"]] == ["deny"]
    assert "category_not_covered" in only_denials["data"][0]["reasons"]
    assert by_agency["count"] == 0
    assert paged["count"] == 2 and len(paged["data"]) == 1
    for secret in ("Alex", "Example", "2011-03-14", "NA-2231"):
        assert secret not in str(everything)


def test_a_persons_history_by_the_audit_pseudonym(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)
    disclose(hub, case_id, categories=["education"])
    subject_ref = oversight(hub, "/v1/oversight/disclosures").json()["data"][0]["subject_ref"]

    history = oversight(hub, f"/v1/oversight/subjects/{subject_ref}/disclosures")
    unknown = oversight(hub, "/v1/oversight/subjects/v1.nobody/disclosures")

    assert history.status_code == 200
    assert history.json()["count"] == 1
    assert history.json()["data"][0]["case_id"] == case_id
    assert unknown.status_code == 404


def test_only_the_panels_dpo_may_look(hub: Hub) -> None:
    coordinator = hub.client.get(
        "/v1/oversight/disclosures", headers=hub.user_headers("coordinator")
    )
    agency = hub.client.get("/v1/oversight/disclosures", headers=add_outsider_agency(hub))

    assert coordinator.status_code == 403
    assert agency.status_code == 403
