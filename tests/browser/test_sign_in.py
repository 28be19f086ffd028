"""Signing in and out in a real browser, and what the session cookie looks like."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveHub, SignIn


def test_sign_in_then_sign_out(
    page: Page, live_hub: LiveHub, sign_in: SignIn, screenshot: Callable[[Page, str], None]
) -> None:
    page.goto("/panel/")
    expect(page).to_have_url(live_hub.url + "/sign-in?next=%2Fpanel%2F")
    screenshot(page, "sign-in")

    sign_in(page, "coordinator")

    expect(page).to_have_url(live_hub.url + "/panel/")
    expect(page.get_by_text("Signed in as")).to_contain_text("coordinator")
    cookie = next(c for c in page.context.cookies() if c["name"] == "hub_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"

    page.get_by_role("button", name="Sign out").click()

    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    assert not [c for c in page.context.cookies() if c["name"] == "hub_session"]
    # The old session is over on the server too: the page asks for a sign-in again.
    page.goto("/panel/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_wrong_password_is_refused_with_one_message(page: Page, sign_in: SignIn) -> None:
    sign_in(page, "coordinator", "not-the-password-at-all")

    expect(page.get_by_role("alert")).to_have_text("The username or password is wrong.")
    expect(page.get_by_label("Password")).to_have_value("")
