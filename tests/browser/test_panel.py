"""A coordinator's pages in a real browser against a real hub: approving an agency's access
request lets that agency's next API request through, and another panel's coordinator sees
none of it."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import LiveHub, SignIn, new_page, refer, sign_in_as

SCHOOL = "northtown-academy"
SOCIAL = "northtown-childrens-services"
ASK = {"purpose": "risk_assessment", "categories": ["education"]}


def synthetic_person() -> dict[str, str]:
    # A new person per module, so no other test's case on the shared hub is linked to this one.
    tag = secrets.token_hex(4)
    return {
        "given_name": "Casey",
        "family_name": f"Browser{tag}",
        "date_of_birth": "2010-05-17",
        "local_id": f"NA-B{tag}",
    }


@pytest.fixture(scope="module")
def case_in_assessment(live_hub: LiveHub) -> str:
    """A referral from the school, moved by the coordinator (over the API) to assessment."""
    case_id = refer(live_hub, live_hub.agency_token(SCHOOL), subject=synthetic_person())
    with live_hub.api(live_hub.person_token("coordinator")) as api:
        for body in (
            {"to": "screening", "reason": "eligible"},
            {
                "to": "assessment",
                "reason": "panel agreed the risk is elevated",
                "designated_agencies": [SCHOOL, SOCIAL],
            },
        ):
            response = api.post(f"/v1/cases/{case_id}/transitions", json=body)
            assert response.status_code == 200, response.text
    return case_id


def ask_for_data(live_hub: LiveHub, case_id: str) -> httpx.Response:
    with live_hub.api(live_hub.agency_token(SCHOOL)) as api:
        return api.post(f"/v1/cases/{case_id}/disclosures", json=ASK)


def test_approving_an_access_request_lets_the_agency_in(
    page: Page,
    live_hub: LiveHub,
    case_in_assessment: str,
    sign_in: SignIn,
    screenshot: Callable[[Page, str], None],
) -> None:
    case_id = case_in_assessment
    assert ask_for_data(live_hub, case_id).status_code == 403
    with live_hub.api(live_hub.agency_token(SCHOOL)) as api:
        asked = api.post(
            f"/v1/cases/{case_id}/access-requests",
            json={**ASK, "justification": "Preparing the panel's risk assessment."},
        )
    assert asked.status_code == 201, asked.text

    sign_in(page, "coordinator")
    row = page.get_by_role("row").filter(has_text=case_id[:8])
    expect(row).to_contain_text("1 waiting")
    screenshot(page, "panel-cases")
    row.get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(case_id[:8])
    request = page.get_by_role("article").filter(has_text=f"{SCHOOL} asks for risk assessment")
    expect(request).to_contain_text("Preparing the panel's risk assessment.")
    screenshot(page, "panel-case")

    request.get_by_role("button", name="Approve").click()

    expect(page.get_by_role("status")).to_have_text(
        "The access request was approved and its grant created."
    )
    grant_row = page.locator("#grants ~ .table-scroll tbody tr").filter(has_text=SCHOOL)
    expect(grant_row).to_contain_text("risk assessment")
    expect(grant_row.locator(".tag.ok")).to_contain_text(" d ")  # time left, e.g. "6 d 23 h"
    expect(page.get_by_text("No access request is waiting.")).to_be_visible()

    # Readable on a tablet too: nothing spills sideways off the page.
    page.set_viewport_size({"width": 768, "height": 1024})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "panel-case-tablet")

    allowed = ask_for_data(live_hub, case_id)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["permitted_categories"] == ["education"]


def test_a_coordinator_of_another_panel_sees_none_of_it(
    browser: Browser, live_hub: LiveHub, case_in_assessment: str
) -> None:
    password = secrets.token_urlsafe(18)
    live_hub.cli("panel", "add", "--id", "southtown", "--name", "Southtown situation table")
    live_hub.cli(
        "user", "add", "--username", "south-coordinator", "--role", "coordinator",
        "--panel", "southtown", stdin=password + "\n",
    )  # fmt: skip
    page = new_page(browser, live_hub.url)
    try:
        sign_in_as(page, live_hub.users, "south-coordinator", password)

        expect(page.get_by_role("heading", level=1)).to_have_text(
            "Cases of Southtown situation table"
        )
        expect(page.get_by_role("link", name=f"Case {case_in_assessment[:8]}")).to_have_count(0)
        assert page.get_by_text("No cases at this stage.").count() == 6

        response = page.goto(f"/panel/cases/{case_in_assessment}")
        assert response is not None and response.status == 404
        expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
        expect(page.locator("main")).not_to_contain_text(case_in_assessment[:8])
    finally:
        page.context.close()


def test_a_dpo_is_not_shown_the_coordinators_pages(
    page: Page, sign_in: SignIn, case_in_assessment: str
) -> None:
    sign_in(page, "dpo")

    response = page.goto(f"/panel/cases/{case_in_assessment}")

    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
