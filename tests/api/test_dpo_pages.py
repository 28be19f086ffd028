"""The DPO's pages over HTTP (no browser): role checks, the subject-access CSV, the inclusion
check and log verification, the break-glass review form and the policy page's replay report."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from hub.cli import app
from hub.web.routes import dpo as dpo_pages
from tests.api.conftest import POLICE, SCHOOL, Hub
from tests.api.flows import (
    case_in_assessment,
    disclose,
    later,
    record_consent,
    refer_alex,
    use_hub_env,
)
from tests.api.test_policy_replay import candidate_without_social_care_at_assessment

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in(hub: Hub, username: str) -> TestClient:
    """Sign in through the real form; the hub's client then carries the session cookie."""
    client = hub.client
    form = client.get("/sign-in")
    token = TOKEN.search(form.text)
    assert token is not None
    response = client.post(
        "/sign-in",
        data={
            "username": username,
            "password": hub.users[username]["password"],
            "csrf_token": token.group(1),
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client


def csrf_of(page_html: str) -> str:
    token = TOKEN.search(page_html)
    assert token is not None
    return token.group(1)


def test_pages_are_for_the_dpo_only(hub: Hub) -> None:
    signed_out = hub.client.get("/dpo/anomalies", follow_redirects=False)
    assert signed_out.status_code == 303
    assert signed_out.headers["location"].startswith("/sign-in")

    coordinator = sign_in(hub, "coordinator")
    for path in ("/dpo/", "/dpo/disclosures", "/dpo/break-glass", "/dpo/policy"):
        page = coordinator.get(path)
        assert page.status_code == 404, path
        assert "Page not found" in page.text


def test_every_page_renders_for_the_dpo(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id, categories=["education"])
    decision_id = disclose(hub, case_id, categories=["education"]).json()["decision_id"]
    client = sign_in(hub, "dpo")

    dashboard = client.get("/dpo/")
    found = client.get("/dpo/disclosures", params={"agency": SCHOOL, "decision": "allow"})
    none = client.get("/dpo/disclosures", params={"agency": POLICE})
    by_purpose = client.get("/dpo/disclosures", params={"purpose": "risk_assessment"})
    other_purpose = client.get("/dpo/disclosures", params={"purpose": "screening"})
    detail = client.get(f"/dpo/disclosures/{decision_id}")
    history = client.get("/dpo/history", params={"case_id": case_id})

    assert dashboard.status_code == 200
    assert '<script type="application/json" id="dpo-chart-data">' in dashboard.text
    assert "<script>" not in dashboard.text  # no inline script under the CSP
    assert f"/dpo/disclosures/{decision_id}" in found.text
    assert "1 result" in found.text and "Nothing matches" in none.text
    assert "1 result" in by_purpose.text and "Nothing matches" in other_purpose.text
    assert "covered by consent" in detail.text and "hub-receipt/v1" in detail.text
    assert "1 decision" in history.text
    for secret in ("Alex", "Example", "2011-03-14", "NA-2231"):
        for page in (dashboard, found, detail, history):
            assert secret not in page.text
    bad_date = client.get("/dpo/disclosures", params={"since": "yesterday"})
    assert bad_date.status_code == 422 and "from must be a date" in bad_date.text
    assert client.get("/dpo/disclosures/not-a-decision").status_code == 404


def test_subject_access_export_as_csv_and_print(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id, categories=["education"])
    allowed = disclose(hub, case_id, categories=["education"]).json()
    later(hub, timedelta(minutes=1))
    denied = disclose(hub, case_id, categories=["police_contact"]).json()["error"]
    client = sign_in(hub, "dpo")
    page = client.get("/dpo/history", params={"case_id": case_id}).text
    export = re.search(r'href="/dpo/history\.csv\?([^"]+)"', page)
    assert export is not None

    response = client.get(f"/dpo/history.csv?{export.group(1).replace('&amp;', '&')}")
    printable = client.get(f"/dpo/history/print?{export.group(1).replace('&amp;', '&')}")

    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["decision_id"], r["decision"]) for r in rows] == [
        (denied["details"]["decision_id"], "deny"),
        (allowed["decision_id"], "allow"),
    ]
    assert rows[1]["categories_permitted"] == "education"
    assert rows[1]["legal_basis"] == "consent"
    assert rows[0]["reasons"].split() and "category_not_covered" in rows[0]["reasons"]
    assert printable.status_code == 200 and "refused (category not covered" in printable.text


def test_inclusion_check_and_log_verification(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id, categories=["education"])
    answer = disclose(hub, case_id, categories=["education"]).json()
    client = sign_in(hub, "dpo")
    detail = client.get(f"/dpo/disclosures/{answer['decision_id']}")

    without_token = client.post(f"/dpo/disclosures/{answer['decision_id']}/inclusion")
    checked = client.post(
        f"/dpo/disclosures/{answer['decision_id']}/inclusion",
        data={"csrf_token": csrf_of(detail.text)},
    )
    verified = client.post("/dpo/verify", data={"csrf_token": csrf_of(detail.text)})

    assert without_token.status_code == 403
    assert checked.status_code == 200
    assert f"Included: the proof leads from entry {answer['audit_index']} " in checked.text
    assert (
        "Verified:" in verified.text and "every hash, link and signature matches" in verified.text
    )


def test_break_glass_review_through_the_form(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    justification = "Credible threat of imminent harm reported to the control room."
    opened = disclose(
        hub,
        case_id,
        agency=POLICE,
        purpose="safeguarding_emergency",
        categories=["identity", "contact"],
        break_glass=True,
        justification=justification,
    )
    assert opened.status_code == 200, opened.text
    client = sign_in(hub, "dpo")
    queue = client.get("/dpo/break-glass")
    assert justification in queue.text
    action = re.search(r'action="(/dpo/break-glass/[^/]+/review)"', queue.text)
    assert action is not None

    forged = client.post(action.group(1), data={"justified": "no", "note": "x"})
    assert forged.status_code == 403
    assert "Awaiting review (1)" in client.get("/dpo/break-glass").text
    done = client.post(
        action.group(1),
        data={"csrf_token": csrf_of(queue.text), "justified": "yes", "note": "Log confirms."},
        follow_redirects=True,
    )

    assert "Your review was saved" in done.text
    assert "Awaiting review (0)" in done.text and "Log confirms." in done.text
    again = client.post(
        action.group(1),
        data={"csrf_token": csrf_of(queue.text), "justified": "no", "note": "Changed mind."},
    )
    assert again.status_code == 409


def test_policy_page_shows_the_latest_replay(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)
    flipped = disclose(hub, case_id, categories=["education", "social_care"]).json()
    client = sign_in(hub, "dpo")
    before = client.get("/dpo/policy")
    assert "No replay has been run" in before.text
    assert hub.state.policy.revision in before.text
    use_hub_env(hub, monkeypatch)
    candidate = candidate_without_social_care_at_assessment(tmp_path)
    result = CliRunner().invoke(app, ["policy", "replay", "--policies", str(candidate)])
    assert result.exit_code == 0, result.output

    after = client.get("/dpo/policy")

    assert "No replay has been run" not in after.text
    assert f"/dpo/disclosures/{flipped['decision_id']}" in after.text
    assert "narrowed" in after.text


def test_search_pages_through_results_keeping_the_filters(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dpo_pages, "PAGE_SIZE", 1)
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id, categories=["education"])
    first = disclose(hub, case_id, categories=["education"]).json()["decision_id"]
    later(hub, timedelta(minutes=1))
    second = disclose(hub, case_id, categories=["education"]).json()["decision_id"]
    later(hub, timedelta(minutes=1))
    disclose(hub, case_id, categories=["police_contact"])  # a denial, filtered out
    client = sign_in(hub, "dpo")

    page_one = client.get("/dpo/disclosures", params={"case_id": case_id, "decision": "allow"})
    link = re.search(r'href="(\?[^"]+)" rel="next"', page_one.text)
    assert link is not None
    page_two = client.get("/dpo/disclosures" + link.group(1).replace("&amp;", "&"))

    assert "Page 1 of 2" in page_one.text and f"/dpo/disclosures/{second}" in page_one.text
    assert "Page 2 of 2" in page_two.text and f"/dpo/disclosures/{first}" in page_two.text
    assert f"/dpo/disclosures/{second}" not in page_two.text
    assert 'rel="prev"' in page_two.text and 'rel="next"' not in page_two.text
