"""A form sent without its CSRF token is refused and changes nothing."""

from __future__ import annotations

import secrets

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveHub, SignIn, refer


def test_a_form_without_its_token_is_refused_and_changes_nothing(
    page: Page, live_hub: LiveHub, sign_in: SignIn
) -> None:
    tag = secrets.token_hex(4)
    case_id = refer(
        live_hub,
        live_hub.agency_token("northtown-academy"),
        subject={
            "given_name": "Dale",
            "family_name": f"Forms{tag}",
            "date_of_birth": "2009-02-03",
            "local_id": f"NA-C{tag}",
        },
    )
    sign_in(page, "coordinator")
    page.goto(f"/panel/cases/{case_id}")
    move = page.get_by_role("form", name="Move the case")
    move.get_by_label("New stage").select_option("screening")
    move.get_by_label("Reason").fill("eligible")
    move.locator("input[name=csrf_token]").evaluate("field => field.remove()")

    move.get_by_role("button", name="Move the case").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    expect(page.get_by_role("alert")).to_contain_text("security token is missing or wrong")
    page.goto(f"/panel/cases/{case_id}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("referred")
    expect(page.get_by_text("The case has not moved since it was referred.")).to_be_visible()

    # A forged token is refused the same way; the page's own token works.
    forged = page.request.post(
        f"/panel/cases/{case_id}/stage",
        form={"to": "screening", "reason": "eligible", "csrf_token": "0" * 64},
        max_redirects=0,
    )
    assert forged.status == 403
    move = page.get_by_role("form", name="Move the case")
    move.get_by_label("New stage").select_option("screening")
    move.get_by_label("Reason").fill("eligible")
    move.get_by_role("button", name="Move the case").click()
    expect(page.get_by_role("status")).to_have_text("The case moved to its new stage.")
    expect(page.get_by_role("heading", level=1)).to_contain_text("screening")
