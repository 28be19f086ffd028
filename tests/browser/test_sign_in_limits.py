"""Lockout after repeated failures, and the idle timeout, in a real browser."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import LiveHub, new_page, sign_in_as, start_hub, stop_hub

# Long enough for sign-in and the first page to load on a busy machine.
IDLE_SECONDS = 4


def test_an_account_is_locked_after_five_failures_with_the_same_message(
    page: Page, live_hub: LiveHub
) -> None:
    password = secrets.token_urlsafe(18)
    live_hub.cli(
        "user", "add", "--username", "locked-coordinator", "--role", "coordinator",
        "--panel", "northtown", stdin=password + "\n",
    )  # fmt: skip
    for attempt in range(5):
        sign_in_as(page, live_hub.users, "locked-coordinator", f"wrong-password-{attempt}")
        expect(page.get_by_role("alert")).to_have_text("The username or password is wrong.")

    # The right password now gets exactly the answer a wrong one gets.
    sign_in_as(page, live_hub.users, "locked-coordinator", password)

    expect(page.get_by_role("alert")).to_have_text("The username or password is wrong.")
    expect(page).to_have_url(live_hub.url + "/sign-in")
    assert not [c for c in page.context.cookies() if c["name"] == "hub_session"]
    # Other accounts are not affected.
    sign_in_as(page, live_hub.users, "coordinator")
    expect(page).to_have_url(live_hub.url + "/panel/")


@pytest.fixture(scope="module")
def impatient_hub(live_hub: LiveHub) -> Iterator[LiveHub]:
    """A second server on the same data, whose sessions end after IDLE_SECONDS idle."""
    hub = start_hub(
        live_hub.workdir,
        extra_env={"HUB_WEB_IDLE_TIMEOUT_SECONDS": str(IDLE_SECONDS)},
        demo_sources=False,
    )
    try:
        yield hub
    finally:
        stop_hub(hub)


def test_a_session_ends_after_the_idle_timeout(browser: Browser, impatient_hub: LiveHub) -> None:
    page = new_page(browser, impatient_hub.url)
    try:
        sign_in_as(page, impatient_hub.users, "coordinator")
        expect(page).to_have_url(impatient_hub.url + "/panel/")

        time.sleep(IDLE_SECONDS + 1)
        page.reload()

        expect(page.get_by_role("status")).to_have_text(
            "You were signed out after a period without activity. Please sign in again."
        )
        expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
        # Signing in again returns to the page that was asked for.
        sign_in_as(page, impatient_hub.users, "coordinator")
        expect(page).to_have_url(impatient_hub.url + "/panel/")
    finally:
        page.context.close()
