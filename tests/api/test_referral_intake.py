"""Referral intake: the channel is recorded, indicators and protective factors come from the
profile's controlled vocabulary, protected grounds are refused naming the field, the summary
has a length limit, and a person with an open case is linked, not duplicated."""

from __future__ import annotations

from typing import Any

import pytest

from hub.services import profiles
from tests.api.conftest import PANEL, POLICE, SCHOOL, Hub
from tests.api.flows import ALEX


def refer(hub: Hub, *, agency: str = SCHOOL, **overrides: Any) -> Any:
    body = {
        "panel": PANEL,
        "subject": ALEX,
        "channel": "agency",
        "indicators": ["withdrawal_from_peers"],
        **overrides,
    }
    return hub.client.post("/v1/referrals", headers=hub.agency_headers(agency), json=body)


@pytest.mark.parametrize(
    "channel",
    ["agency", "helpline", "web_form", "self_referral", "family_or_peer", "signposting"],
)
def test_every_channel_is_recorded(hub: Hub, channel: str) -> None:
    response = refer(hub, channel=channel, protective_factors=["trusted_adult"])
    assert response.status_code == 201, response.text
    assert response.json()["channel"] == channel
    assert response.json()["protective_factors"] == ["trusted_adult"]


def test_unknown_channel_is_refused(hub: Hub) -> None:
    response = refer(hub, channel="rumour")
    assert response.status_code == 422
    assert "channel" in str(response.json()["error"]["details"])


def test_indicators_come_from_the_profiles_vocabulary(hub: Hub) -> None:
    assert "withdrawal_from_peers" in profiles.indicators("situation_table")
    unknown = refer(hub, indicators=["withdrawal_from_peers", "looks_suspicious"])
    assert unknown.status_code == 422
    assert unknown.json()["error"]["details"] == {
        "field": "indicators",
        "unknown": ["looks_suspicious"],
    }
    bad_factor = refer(hub, protective_factors=["wealthy"])
    assert bad_factor.json()["error"]["details"]["field"] == "protective_factors"


@pytest.mark.parametrize("field", ["indicators", "protective_factors"])
@pytest.mark.parametrize(
    "ground", ["religion", "ethnicity", "political_opinion", "group_membership"]
)
def test_protected_grounds_are_refused_naming_the_field(hub: Hub, field: str, ground: str) -> None:
    overrides: dict[str, Any] = {field: [ground]}
    response = refer(hub, **overrides)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "refused_ground"
    assert error["details"] == {"field": field}


def test_summary_length_is_limited(hub: Hub) -> None:
    assert refer(hub, summary="x" * 2001).status_code == 422
    assert refer(hub, summary="x" * 2000).status_code == 201


def test_a_second_referral_links_to_the_open_case(hub: Hub) -> None:
    first = refer(hub)
    second = refer(hub, agency=POLICE, channel="helpline", indicators=["threats_of_violence"])
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]


def enter(hub: Hub, username: str = "coordinator", **overrides: Any) -> Any:
    subject = {k: v for k, v in ALEX.items() if k != "local_id"}
    body = {
        "panel": PANEL,
        "subject": subject,
        "channel": "helpline",
        "received_by": POLICE,
        "indicators": ["threats_of_violence"],
        "summary": "A neighbour called the helpline.",
        **overrides,
    }
    return hub.client.post("/v1/referrals", headers=hub.user_headers(username), json=body)


@pytest.mark.parametrize(
    "channel", ["helpline", "web_form", "self_referral", "family_or_peer", "signposting"]
)
def test_a_coordinator_enters_referrals_from_other_channels(hub: Hub, channel: str) -> None:
    response = enter(hub, channel=channel)
    assert response.status_code == 201, response.text
    case = response.json()
    assert case["channel"] == channel
    assert case["referred_by"] == POLICE
    assert case["summary"] == "A neighbour called the helpline."


def test_what_a_coordinator_may_not_enter(hub: Hub) -> None:
    as_agency = enter(hub, channel="agency")
    assert as_agency.json()["error"]["details"] == {"field": "channel"}
    no_receiver = enter(hub, received_by=None)
    assert no_receiver.json()["error"]["details"] == {"field": "received_by"}
    outsider = enter(hub, received_by="southtown-police")
    assert outsider.json()["error"]["details"] == {"field": "received_by"}
    with_local_id = enter(hub, subject=ALEX)
    assert with_local_id.json()["error"]["details"] == {"field": "subject.local_id"}
    assert enter(hub, "dpo").status_code == 403
    other = refer(hub, received_by=POLICE)
    assert other.json()["error"]["details"] == {"field": "received_by"}
    wrong_panel = enter(hub, panel="southtown")
    assert wrong_panel.status_code == 404
