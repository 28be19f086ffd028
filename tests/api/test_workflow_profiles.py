"""A full walk of the coordinator's workflow through each shipped profile, over the API:
referral, screening against the profile's checklist, the profile's assessment dimensions,
consent and intervention plan, an access request capped by the profile, a disclosure, a
break-glass window and its review, and closing with the profile's retention period."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.services import profiles
from tests.api.conftest import POLICE, SOCIAL, YOUTH, Hub
from tests.api.flows import disclose, move, refer_alex
from tests.api.test_profiles import use_profile
from tests.api.workflow_flows import (
    assess,
    close,
    coordinator,
    plan,
    to_assessment,
    voluntary_agreement,
)


@pytest.mark.parametrize("profile", ["situation_table", "channel_panel", "safety_house"])
def test_full_walk(hub: Hub, profile: str) -> None:
    use_profile(hub, profile)
    case_id = str(refer_alex(hub)["id"])
    move(hub, case_id, "screening")
    screened = to_assessment(hub, case_id, profile)
    assert set(screened["checklist"]) == set(profiles.screening_checklist(profile))

    assessed = assess(hub, case_id, profile)
    assert assessed.status_code == 201, assessed.text
    assert assessed.json()["threshold"] == profiles.threshold_name(profile)
    assert list(assessed.json()["dimensions"]) == list(profiles.threshold_dimensions(profile))

    consent_id = voluntary_agreement(hub, case_id)
    planned = plan(hub, case_id, consent_id)
    assert planned.status_code == 201, planned.text
    assert planned.json()["case"]["stage"] == "intervention"
    limit = profiles.max_concurrent_interventions(profile)
    for extra in range(limit):
        more = plan(hub, case_id, consent_id, provider=f"provider {extra}")
        assert bool(more.json()["warnings"]) == (extra + 2 > limit)

    asked = hub.client.post(
        f"/v1/cases/{case_id}/access-requests",
        headers=hub.agency_headers(YOUTH),
        json={
            "purpose": "intervention_planning",
            "categories": ["contact"],
            "justification": "The mentor needs to arrange the first meeting.",
        },
    ).json()
    longest = profiles.max_grant_days(profile)
    too_long = hub.client.post(
        f"/v1/access-requests/{asked['id']}/decision",
        headers=coordinator(hub),
        json={
            "decision": "approve",
            "expires_at": (hub.now[0] + timedelta(days=longest, seconds=1)).isoformat(),
        },
    )
    assert too_long.status_code == 422
    assert f"at most {longest} days" in too_long.json()["error"]["message"]
    approved = hub.client.post(
        f"/v1/access-requests/{asked['id']}/decision",
        headers=coordinator(hub),
        json={
            "decision": "approve",
            "expires_at": (hub.now[0] + timedelta(days=longest)).isoformat(),
        },
    )
    assert approved.status_code == 200, approved.text

    shared = disclose(
        hub, case_id, agency=SOCIAL, purpose="intervention_planning", categories=["contact"]
    )
    assert shared.status_code == 200, shared.text

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
    dpo = hub.user_headers("dpo")
    [window] = hub.client.get("/v1/break-glass?status=open", headers=dpo).json()["data"]
    reviewed = hub.client.post(
        f"/v1/break-glass/{window['id']}/review",
        headers=dpo,
        json={"justified": True, "note": "Control room log confirms the call."},
    )
    assert reviewed.status_code == 200, reviewed.text

    closed = close(hub, case_id, "intervention_completed")
    assert closed["outcome"] == "intervention_completed"
    expected = hub.now[0] + timedelta(days=profiles.retention_days(profile))
    assert closed["retain_until"][:10] == str(expected.date())
    after = disclose(
        hub, case_id, agency=SOCIAL, purpose="intervention_planning", categories=["contact"]
    )
    assert after.status_code == 403
