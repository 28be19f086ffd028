"""Anomalies for the DPO, each with the decisions behind it: an agency's volume far above its
own baseline, requests outside a grant's window, bursts of denials, every break-glass."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.errors import Forbidden
from hub.services.anomalies import BURST_DENIALS, VOLUME_MIN, AnomaliesPublic, find_anomalies
from tests.api.conftest import POLICE, SCHOOL, Hub
from tests.api.flows import (
    case_in_assessment,
    disclose,
    grant,
    later,
    pin_clock,
    record_consent,
    refer_alex,
)
from tests.api.test_dpo_statistics import person


def anomalies(hub: Hub, username: str = "dpo") -> AnomaliesPublic:
    with hub.session() as session:
        return find_anomalies(session=session, principal=person(hub, username))


def test_a_burst_of_denials_is_flagged_with_its_entries(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    denied = []
    for _ in range(BURST_DENIALS - 1):
        response = disclose(hub, case_id, categories=["police_contact"])
        denied.append(response.json()["error"]["details"]["decision_id"])
        later(hub, timedelta(minutes=2))
    assert [a for a in anomalies(hub).data if a.kind == "denial_burst"] == []

    response = disclose(hub, case_id, categories=["police_contact"])
    denied.append(response.json()["error"]["details"]["decision_id"])

    [burst] = [a for a in anomalies(hub).data if a.kind == "denial_burst"]
    assert burst.agency == SCHOOL
    assert [e.decision_id for e in burst.entries] == denied
    assert all(e.decision == "deny" for e in burst.entries)


def test_denials_spread_out_are_no_burst(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    for _ in range(BURST_DENIALS + 1):
        disclose(hub, case_id, categories=["police_contact"])
        later(hub, timedelta(minutes=5))

    assert [a for a in anomalies(hub).data if a.kind == "denial_burst"] == []


def test_a_request_after_the_grant_expired_is_flagged(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    grant(hub, case_id, expires_at=hub.now[0] + timedelta(hours=1))
    assert disclose(hub, case_id).status_code == 200
    later(hub, timedelta(hours=2))
    late = disclose(hub, case_id)
    assert late.status_code == 403

    [outside] = [a for a in anomalies(hub).data if a.kind == "outside_window"]
    assert outside.agency == SCHOOL
    assert outside.summary == "request under a grant that was expired or not yet valid"
    assert [e.decision_id for e in outside.entries] == [
        late.json()["error"]["details"]["decision_id"]
    ]


def test_volume_far_above_the_agencys_own_baseline(hub: Hub) -> None:
    pin_clock(hub)
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id, categories=["education"])
    for _ in range(2):
        disclose(hub, case_id)
        later(hub, timedelta(hours=1))
    later(hub, timedelta(days=7))
    busy_week = []
    for _ in range(VOLUME_MIN - 1):
        busy_week.append(disclose(hub, case_id).json()["decision_id"])
        later(hub, timedelta(hours=1))
    assert [a for a in anomalies(hub).data if a.kind == "volume"] == []

    busy_week.append(disclose(hub, case_id).json()["decision_id"])

    [spike] = [a for a in anomalies(hub).data if a.kind == "volume"]
    assert spike.agency == SCHOOL
    assert {e.decision_id for e in spike.entries} == set(busy_week)
    assert "10 requests" in spike.summary and "median of the 1 weeks before: 2" in spike.summary


def test_every_break_glass_is_listed_with_its_requests(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    response = disclose(
        hub,
        case_id,
        agency=POLICE,
        purpose="safeguarding_emergency",
        categories=["identity", "contact"],
        break_glass=True,
        justification="Credible threat of imminent harm reported to the control room.",
    )
    assert response.status_code == 200, response.text

    [item] = [a for a in anomalies(hub).data if a.kind == "break_glass"]
    assert item.agency == POLICE and item.reviewed is False
    assert [e.decision_id for e in item.entries] == [response.json()["decision_id"]]


def test_only_a_dpo_sees_anomalies(hub: Hub) -> None:
    with pytest.raises(Forbidden, match="data protection officer"):
        anomalies(hub, "coordinator")
