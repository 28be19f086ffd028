"""The DPO's dashboard figures: disclosures and denials per ISO week by agency and purpose,
break-glass use and the most frequent denial reasons, counted from real decisions."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from hub.errors import BadRequest, Forbidden
from hub.services.auth import principal_for_user
from hub.services.principals import Principal
from hub.services.statistics import StatisticsPublic, iso_week, panel_statistics
from hub.storage.models import User
from tests.api.conftest import POLICE, SCHOOL, Hub
from tests.api.flows import case_in_assessment, disclose, later, pin_clock, record_consent


def person(hub: Hub, username: str) -> Principal:
    with hub.session() as session:
        user = session.get(User, username)
        assert user is not None
        return principal_for_user(user)


def figures(
    hub: Hub,
    username: str = "dpo",
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> StatisticsPublic:
    with hub.session() as session:
        return panel_statistics(
            session=session,
            principal=person(hub, username),
            now=hub.now[0],
            since=since,
            until=until,
        )


def test_counts_per_week_by_agency_and_purpose(hub: Hub) -> None:
    pin_clock(hub)
    first_week = iso_week(hub.now[0])
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id, categories=["education"])
    assert disclose(hub, case_id, categories=["education"]).status_code == 200
    later(hub, timedelta(minutes=1))
    assert disclose(hub, case_id, categories=["police_contact"]).status_code == 403
    later(hub, timedelta(days=7))
    assert disclose(hub, case_id, categories=["education"]).status_code == 200
    emergency = disclose(
        hub,
        case_id,
        agency=POLICE,
        purpose="safeguarding_emergency",
        categories=["identity", "contact"],
        break_glass=True,
        justification="Credible threat of imminent harm reported to the control room.",
    )
    assert emergency.status_code == 200, emergency.text

    stats = figures(hub)

    second_week = iso_week(hub.now[0])
    assert stats.weeks[-2:] == [first_week, second_week]
    assert (stats.allowed, stats.denied) == (3, 1)
    school = next(s for s in stats.by_agency if s.name == SCHOOL)
    assert (school.allowed[-2:], school.denied[-2:]) == ([1, 1], [1, 0])
    police = next(s for s in stats.by_agency if s.name == POLICE)
    assert (police.allowed[-2:], police.denied[-2:]) == ([0, 1], [0, 0])
    by_purpose = {s.name: (s.allowed[-2:], s.denied[-2:]) for s in stats.by_purpose}
    assert by_purpose == {
        "risk_assessment": ([1, 1], [1, 0]),
        "safeguarding_emergency": ([0, 1], [0, 0]),
    }
    assert (stats.break_glass_requests, stats.break_glass_windows) == (1, 1)
    assert stats.top_denial_reasons[0].code == "category_not_covered"
    assert stats.top_denial_reasons[0].count == 1


def test_a_range_narrows_the_figures(hub: Hub) -> None:
    pin_clock(hub)
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id, categories=["education"])
    disclose(hub, case_id, categories=["education"])
    later(hub, timedelta(days=14))
    disclose(hub, case_id, categories=["education"])

    recent = figures(hub, since=hub.now[0] - timedelta(days=1), until=hub.now[0] + timedelta(1))

    assert recent.allowed == 1
    assert recent.weeks == [iso_week(hub.now[0])]


def test_only_a_dpo_sees_figures_and_ranges_must_make_sense(hub: Hub) -> None:
    with pytest.raises(Forbidden, match="data protection officer"):
        figures(hub, "coordinator")
    with pytest.raises(BadRequest, match="until must be after since"):
        figures(hub, since=hub.now[0], until=hub.now[0])
    with pytest.raises(BadRequest, match="at most 260 weeks"):
        figures(hub, since=hub.now[0] - timedelta(days=7 * 300), until=hub.now[0])
