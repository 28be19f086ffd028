"""A data protection officer's pages in a real browser against a real hub: finding a disclosure
made moments earlier through the API and proving it is in the log, the dashboard's charts, the
keyboard alone, the break-glass review and the subject-access CSV."""

from __future__ import annotations

import csv
import io
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.api.test_policy_replay import candidate_without_social_care_at_assessment
from tests.browser.conftest import LiveHub, SignIn, refer, screenshots_enabled

SCHOOL = "northtown-academy"
SOCIAL = "northtown-childrens-services"
POLICE = "northtown-police"
Shot = Callable[[Page, str], None]


def synthetic_person() -> dict[str, str]:
    tag = secrets.token_hex(4)
    return {
        "given_name": "Jordan",
        "family_name": f"Oversight{tag}",
        "date_of_birth": "2009-08-21",
        "local_id": f"NA-D{tag}",
    }


@pytest.fixture(scope="module")
def disclosed(live_hub: LiveHub) -> dict[str, Any]:
    """A case in assessment with the parent's consent, one disclosure and one denial to the
    school, all made through the API as the agency and the coordinator would."""
    case_id = refer(live_hub, live_hub.agency_token(SCHOOL), subject=synthetic_person())
    with live_hub.api(live_hub.person_token("coordinator")) as api:
        for body in (
            {"to": "screening", "reason": "eligible"},
            {
                "to": "assessment",
                "reason": "risk elevated",
                "designated_agencies": [SCHOOL, SOCIAL],
            },
        ):
            assert api.post(f"/v1/cases/{case_id}/transitions", json=body).status_code == 200
        consent = api.post(
            f"/v1/cases/{case_id}/consents",
            json={
                "given_by": "parent",
                "recipients": [SCHOOL],
                "purposes": ["risk_assessment"],
                "categories": ["education", "social_care"],
            },
        )
        assert consent.status_code == 201, consent.text
    with live_hub.api(live_hub.agency_token(SCHOOL)) as api:
        allowed = api.post(
            f"/v1/cases/{case_id}/disclosures",
            json={"purpose": "risk_assessment", "categories": ["education", "social_care"]},
        )
        denied = api.post(
            f"/v1/cases/{case_id}/disclosures",
            json={"purpose": "risk_assessment", "categories": ["police_contact"]},
        )
    assert allowed.status_code == 200, allowed.text
    assert denied.status_code == 403, denied.text
    return {
        "case_id": case_id,
        "allowed": allowed.json(),
        "denied_id": denied.json()["error"]["details"]["decision_id"],
    }


def test_dpo_finds_a_fresh_disclosure_and_its_inclusion_check_passes(
    page: Page, live_hub: LiveHub, disclosed: dict[str, Any], sign_in: SignIn, screenshot: Shot
) -> None:
    decision_id = disclosed["allowed"]["decision_id"]
    sign_in(page, "dpo")
    expect(page).to_have_url(live_hub.url + "/dpo/")
    page.get_by_role("navigation", name="Oversight").get_by_role("link", name="Disclosures").click()
    page.get_by_label("Case id").fill(disclosed["case_id"])
    page.get_by_label("Decision").select_option("allow")
    page.get_by_role("button", name="Search").click()

    expect(page.get_by_role("heading", name="1 result")).to_be_visible()
    screenshot(page, "dpo-disclosures")
    page.get_by_role("link", name=f"Decision {decision_id[:8]}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Disclosure {decision_id}")
    facts = page.locator("#decision-facts")
    expect(facts).to_contain_text("education, social care")
    expect(facts).to_contain_text(disclosed["allowed"]["policy_revision"])
    expect(page.locator("#decision-reasons")).to_contain_text("covered by consent")
    page.get_by_role("button", name="Check inclusion in the latest checkpoint").click()

    result = page.get_by_role("status")
    expect(result).to_contain_text(
        f"Included: the proof leads from entry {disclosed['allowed']['audit_index']} "
    )
    expect(result).to_contain_text("the checkpoint's signature is valid")
    screenshot(page, "dpo-disclosure")


def test_dashboard_charts_draw_the_figures(
    page: Page, disclosed: dict[str, Any], sign_in: SignIn, screenshot: Shot
) -> None:
    sign_in(page, "dpo")
    expect(page.locator("html")).to_have_attribute("data-charts", "drawn")

    charted: dict[str, Any] = page.evaluate(
        """() => {
            const chart = window.Chart.getChart("chart-agency");
            const school = chart.data.datasets.filter(d => d.stack === "northtown-academy");
            const canvas = document.getElementById("chart-agency");
            const pixels = canvas.getContext("2d")
                .getImageData(0, 0, canvas.width, canvas.height).data;
            let painted = 0;
            for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] > 0) painted++; }
            return {
                weeks: chart.data.labels,
                allowed: school.find(d => d.label.endsWith("disclosures")).data,
                denied: school.find(d => d.label.endsWith("denials")).data,
                bars: chart.getDatasetMeta(0).data.length,
                painted: painted,
            };
        }"""
    )

    # The last week holds this module's disclosure and denial (and maybe other tests' too).
    assert charted["allowed"][-1] >= 1 and charted["denied"][-1] >= 1
    assert charted["bars"] == len(charted["weeks"]) == 12
    assert charted["painted"] > 1000
    table_cell = page.locator("#table-agency tr", has_text=SCHOOL).locator("td").last
    expect(table_cell).to_have_text(f"{charted['allowed'][-1]} / {charted['denied'][-1]}")
    screenshot(page, "dpo-dashboard")

    # On a tablet the page reflows: nothing sticks out sideways but the wide tables' own
    # scroll boxes, and the charts shrink with the page.
    page.set_viewport_size({"width": 768, "height": 1024})
    expect(page.locator("#chart-agency")).to_have_attribute("width", re.compile(r"^[1-7]\d\d$"))
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0


def press_tab_until(page: Page, selector: str, limit: int = 40) -> None:
    """Tab forward until the element matching `selector` has the focus, as a keyboard user."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
            assert outline != "none", f"focus on {selector} is not visible"
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_keyboard_only_sign_in_and_search(
    page: Page, live_hub: LiveHub, disclosed: dict[str, Any]
) -> None:
    page.goto("/sign-in")
    press_tab_until(page, "#username")
    page.keyboard.type("dpo")
    press_tab_until(page, "#password")
    page.keyboard.type(live_hub.users["dpo"]["password"])
    page.keyboard.press("Enter")
    expect(page).to_have_url(live_hub.url + "/dpo/")

    press_tab_until(page, 'nav[aria-label="Oversight"] a[href="/dpo/disclosures"]')
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Disclosures and denials")
    press_tab_until(page, "#case_id")
    page.keyboard.type(disclosed["case_id"])
    press_tab_until(page, "#decision")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")  # "Denials only"
    press_tab_until(page, "#search-button")
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="1 result")).to_be_visible()
    press_tab_until(page, f'a[href="/dpo/disclosures/{disclosed["denied_id"]}"]')
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Denial {disclosed['denied_id']}")


def test_break_glass_review_decision(
    page: Page, live_hub: LiveHub, sign_in: SignIn, screenshot: Shot
) -> None:
    case_id = refer(live_hub, live_hub.agency_token(SCHOOL), subject=synthetic_person())
    justification = f"Control room call {secrets.token_hex(3)}: threat of imminent harm."
    with live_hub.api(live_hub.agency_token(POLICE)) as api:
        opened = api.post(
            f"/v1/cases/{case_id}/disclosures",
            json={
                "purpose": "safeguarding_emergency",
                "categories": ["identity", "contact"],
                "break_glass": True,
                "justification": justification,
            },
        )
    assert opened.status_code == 200, opened.text
    sign_in(page, "dpo")
    page.goto("/dpo/break-glass")
    item = page.locator("section.card", has_text=justification)
    expect(item).to_contain_text(POLICE)
    screenshot(page, "dpo-break-glass")

    item.get_by_label("Not justified").check()
    item.get_by_label("Your finding").fill("No threat on record at the control room.")
    item.get_by_role("button", name="Record review").click()

    expect(page.get_by_role("status")).to_have_text(
        "Your review was saved and written to the audit log."
    )
    expect(page.locator("section.card", has_text=justification)).to_have_count(0)
    reviewed = page.locator("#reviewed tr", has_text=justification)
    expect(reviewed).to_contain_text("not justified")
    expect(reviewed).to_contain_text("No threat on record at the control room.")
    expect(reviewed).to_contain_text("by user:dpo")


def test_subject_access_csv_export(
    page: Page, disclosed: dict[str, Any], sign_in: SignIn, screenshot: Shot
) -> None:
    sign_in(page, "dpo")
    page.goto("/dpo/history")
    page.get_by_label("Case id").fill(disclosed["case_id"])
    page.get_by_role("button", name="Find history").click()
    expect(page.locator("#history-heading")).to_contain_text("2 decisions")
    screenshot(page, "dpo-history")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download as CSV").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")

    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["decision_id"], r["decision"]) for r in rows] == [
        (disclosed["denied_id"], "deny"),
        (disclosed["allowed"]["decision_id"], "allow"),
    ]
    assert rows[1]["categories_permitted"] == "education social_care"
    assert rows[1]["legal_basis"] == "consent" and rows[1]["case_id"] == disclosed["case_id"]
    assert "category_not_covered" in rows[0]["reasons"].split()
    assert "Jordan" not in text and "Oversight" not in text  # pseudonyms and codes only


def test_anomalies_and_policy_pages(
    page: Page, live_hub: LiveHub, disclosed: dict[str, Any], sign_in: SignIn, screenshot: Shot
) -> None:
    if screenshots_enabled():
        # Only for the picture: a replay costs a CLI start-up and a policy compile, and the
        # report on this page is tested in tests/api/test_dpo_pages.py.
        candidate = candidate_without_social_care_at_assessment(live_hub.workdir / "candidate")
        live_hub.cli("policy", "replay", "--policies", str(candidate))
    sign_in(page, "dpo")
    page.get_by_role("navigation", name="Oversight").get_by_role("link", name="Policy").click()

    expect(page.locator("#policy-revision")).not_to_be_empty()
    if screenshots_enabled():
        changed = page.get_by_role("row").filter(has_text=disclosed["allowed"]["decision_id"][:8])
        expect(changed).to_contain_text("allow to deny")
    screenshot(page, "dpo-policy")
    # Five denials within a minute on a fresh case: a burst the anomalies page must show.
    token = live_hub.agency_token(SCHOOL)
    case_id = refer(live_hub, token, subject=synthetic_person())
    with live_hub.api(token) as api:
        denied = [
            api.post(
                f"/v1/cases/{case_id}/disclosures",
                json={"purpose": "risk_assessment", "categories": ["education"]},
            ).json()["error"]["details"]["decision_id"]
            for _ in range(5)
        ]
    page.get_by_role("navigation", name="Oversight").get_by_role("link", name="Anomalies").click()
    page.get_by_label("Kind").select_option("denial_burst")
    page.get_by_role("button", name="Show").click()

    burst = page.locator("section.anomaly", has=page.locator(f'a[href$="{denied[-1]}"]'))
    expect(burst.get_by_role("heading")).to_contain_text(f"denial burst — {SCHOOL}")
    for decision_id in denied:
        expect(burst.locator(f'a[href="/dpo/disclosures/{decision_id}"]')).to_have_count(1)
    screenshot(page, "dpo-anomalies")
