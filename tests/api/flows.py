"""Steps a coordinator and an agency take, shared by the API tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.api.conftest import PANEL, SCHOOL, SOCIAL, Hub

ALEX = {
    "given_name": "Alex",
    "family_name": "Example",
    "date_of_birth": "2011-03-14",
    "local_id": "NA-2231",
}


def refer_alex(hub: Hub, *, agency: str = SCHOOL) -> dict[str, Any]:
    response = hub.client.post(
        "/v1/referrals",
        headers=hub.agency_headers(agency),
        json={
            "panel": PANEL,
            "subject": ALEX,
            "channel": "agency",
            "indicators": ["expressed_support_for_violence", "withdrawal_from_peers"],
            "summary": "Concern raised by the head of year after a classroom incident.",
        },
    )
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def move(hub: Hub, case_id: str, to: str, **extra: Any) -> dict[str, Any]:
    response = hub.client.post(
        f"/v1/cases/{case_id}/transitions",
        headers=hub.user_headers("coordinator"),
        json={"to": to, "reason": "panel decision", **extra},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def case_in_assessment(hub: Hub) -> str:
    case_id = str(refer_alex(hub)["id"])
    move(hub, case_id, "screening")
    move(hub, case_id, "assessment", designated_agencies=[SCHOOL, SOCIAL])
    return case_id


def record_consent(hub: Hub, case_id: str, **terms: Any) -> dict[str, Any]:
    body = {
        "given_by": "parent",
        "recipients": [SCHOOL],
        "purposes": ["risk_assessment"],
        "categories": ["education", "social_care", "behavioural_indicators"],
        **terms,
    }
    response = hub.client.post(
        f"/v1/cases/{case_id}/consents", headers=hub.user_headers("coordinator"), json=body
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def grant(hub: Hub, case_id: str, *, expires_at: datetime, **terms: Any) -> dict[str, Any]:
    body = {
        "agency": SCHOOL,
        "purposes": ["risk_assessment"],
        "categories": ["education"],
        "expires_at": expires_at.isoformat(),
        **terms,
    }
    response = hub.client.post(
        f"/v1/cases/{case_id}/grants", headers=hub.user_headers("coordinator"), json=body
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def disclose(hub: Hub, case_id: str, *, agency: str = SCHOOL, **body: Any) -> Any:
    payload = {"purpose": "risk_assessment", "categories": ["education"], **body}
    return hub.client.post(
        f"/v1/cases/{case_id}/disclosures", headers=hub.agency_headers(agency), json=payload
    )


# The demo people's ages change with the calendar; tests about age pin the hub's clock here.
PINNED_NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def pin_clock(hub: Hub) -> None:
    hub.now[0] = PINNED_NOW


def later(hub: Hub, delta: timedelta) -> None:
    hub.now[0] = hub.now[0] + delta


def use_hub_env(hub: Hub, monkeypatch: Any) -> None:
    """Point the `hub` command line at this test's hub."""
    settings = hub.settings
    assert settings.master_key is not None
    monkeypatch.setenv("HUB_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("HUB_DATABASE_URL", str(settings.database_url))
    monkeypatch.setenv("HUB_MASTER_KEY", settings.master_key.get_secret_value())
