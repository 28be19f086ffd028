"""Whatever a client sends, it gets a 4xx in one shape, with no personal data echoed back,
and nothing is half written."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.conftest import PANEL, SCHOOL, Hub
from tests.api.flows import ALEX, case_in_assessment, record_consent
from tests.api.test_disclosures import entries


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert {"code", "message", "details"} <= set(body["error"])
    assert body["error"]["code"] == code
    return dict(body["error"])


def test_unknown_case_is_404(hub: Hub) -> None:
    response = hub.client.post(
        "/v1/cases/00000000-0000-0000-0000-000000000000/disclosures",
        headers=hub.agency_headers(SCHOOL),
        json={"purpose": "screening", "categories": ["behavioural_indicators"]},
    )
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize(
    "body",
    [
        {"purpose": "curiosity", "categories": ["education"]},
        {"purpose": "risk_assessment", "categories": ["religion"]},
        {"purpose": "risk_assessment", "categories": []},
        {"purpose": "risk_assessment", "categories": ["education"], "extra": 1},
        {"categories": ["education"]},
    ],
    ids=["unknown-purpose", "unknown-category", "no-category", "unknown-field", "no-purpose"],
)
def test_invalid_disclosure_requests_are_422_and_not_logged(hub: Hub, body: dict[str, Any]) -> None:
    case_id = case_in_assessment(hub)
    before = len(entries(hub))

    response = hub.client.post(
        f"/v1/cases/{case_id}/disclosures", headers=hub.agency_headers(SCHOOL), json=body
    )

    error = assert_error(response, 422, "invalid_request")
    assert all("input" not in problem for problem in error["details"])
    assert len(entries(hub)) == before


def test_malformed_json_is_400(hub: Hub) -> None:
    response = hub.client.post(
        "/v1/referrals",
        headers={**hub.agency_headers(SCHOOL), "Content-Type": "application/json"},
        content=b'{"panel": "northtown", ',
    )
    assert_error(response, 400, "malformed_json")


def test_body_over_64_kib_is_413(hub: Hub) -> None:
    big = json.dumps({"panel": PANEL, "summary": "x" * (64 * 1024)}).encode()
    response = hub.client.post(
        "/v1/referrals",
        headers={**hub.agency_headers(SCHOOL), "Content-Type": "application/json"},
        content=big,
    )
    assert_error(response, 413, "too_large")


def test_chunked_body_over_the_limit_is_413(hub: Hub) -> None:
    def chunks() -> Any:
        for _ in range(80):
            yield b"x" * 1024

    response = hub.client.post(
        "/v1/referrals",
        headers={**hub.agency_headers(SCHOOL), "Content-Type": "application/json"},
        content=chunks(),
    )
    assert_error(response, 413, "too_large")


def test_wrong_content_type_is_415(hub: Hub) -> None:
    response = hub.client.post(
        "/v1/referrals",
        headers={**hub.agency_headers(SCHOOL), "Content-Type": "text/plain"},
        content=json.dumps({"panel": PANEL}).encode(),
    )
    assert_error(response, 415, "unsupported_media_type")


def test_token_endpoint_wants_a_form(hub: Hub) -> None:
    response = hub.client.post("/v1/token", json={"client_assertion": hub.assertion(SCHOOL)})
    assert_error(response, 415, "unsupported_media_type")


def test_validation_errors_do_not_echo_personal_data(hub: Hub) -> None:
    response = hub.client.post(
        "/v1/referrals",
        headers=hub.agency_headers(SCHOOL),
        json={
            "panel": PANEL,
            "subject": {**ALEX, "date_of_birth": "Alex Example's birthday"},
            "indicators": ["withdrawal_from_peers"],
        },
    )
    assert_error(response, 422, "invalid_request")
    assert "Alex" not in response.text and "Example" not in response.text


def test_protected_characteristics_are_refused_as_grounds(hub: Hub) -> None:
    response = hub.client.post(
        "/v1/referrals",
        headers=hub.agency_headers(SCHOOL),
        json={"panel": PANEL, "subject": ALEX, "indicators": ["religion"]},
    )
    error = assert_error(response, 422, "refused_ground")
    assert error["details"] == {"field": "indicators"}


def test_unknown_route_and_method_keep_the_shape(hub: Hub) -> None:
    assert_error(hub.client.get("/v1/nothing-here"), 404, "not_found")
    assert_error(hub.client.get("/v1/referrals"), 405, "method_not_allowed")


def test_invalid_transition_is_409_and_changes_nothing(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    headers = hub.user_headers("coordinator")

    response = hub.client.post(
        f"/v1/cases/{case_id}/transitions", headers=headers, json={"to": "referred", "reason": "x"}
    )

    assert_error(response, 409, "conflict")
    assert hub.client.get(f"/v1/cases/{case_id}", headers=headers).json()["stage"] == "assessment"


def test_consent_recipients_must_be_panel_agencies(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    response = hub.client.post(
        f"/v1/cases/{case_id}/consents",
        headers=hub.user_headers("coordinator"),
        json={
            "given_by": "parent",
            "recipients": ["somewhere-else"],
            "purposes": ["risk_assessment"],
            "categories": ["education"],
        },
    )
    assert_error(response, 422, "bad_request")


def test_agencies_cannot_do_a_coordinators_work(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    response = hub.client.post(
        f"/v1/cases/{case_id}/transitions",
        headers=hub.agency_headers(SCHOOL),
        json={"to": "closed", "reason": "x"},
    )
    assert_error(response, 403, "forbidden")
    record_consent(hub, case_id)  # the coordinator still can


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/healthz"), ("GET", "/v1/cases/x"), ("POST", "/v1/referrals"), ("GET", "/nowhere")],
)
def test_every_response_carries_the_security_headers(hub: Hub, method: str, path: str) -> None:
    response = hub.client.request(
        method, path, headers={"Content-Type": "text/plain"}, content=b"x"
    )

    csp = dict(
        d.strip().split(" ", 1) for d in response.headers["content-security-policy"].split(";")
    )
    assert csp["script-src"] == "'self'"
    assert csp["object-src"] == "'none'"
    assert csp["frame-ancestors"] == "'none'"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"


def test_api_docs_are_served_locally_without_inline_script(hub: Hub) -> None:
    page = hub.client.get("/docs")
    assert page.status_code == 200
    assert "<script>" not in page.text and "cdn" not in page.text.lower()
    for src in (
        "/docs-assets/swagger-ui-bundle.js",
        "/docs-start.js",
        "/docs-assets/swagger-ui.css",
    ):
        assert src in page.text
        assert hub.client.get(src).status_code == 200
    assert hub.client.get("/openapi.json").json()["info"]["title"] == "Inter-agency hub"
