"""Limits: requests per agency client, field sizes, connector fan-out, and the security
headers on every kind of answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.api.ratelimit import RateLimited, RateLimiter, TokenRateLimits, address_key
from hub.config import Settings
from hub.services import auth
from hub.services.auth import CLIENT_ASSERTION_TYPE
from tests.api.conftest import POLICE, SCHOOL, Hub
from tests.api.flows import case_in_assessment, record_consent, refer_alex
from tests.security.roles import app_of

MakeHub = Callable[..., Hub]


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert {"code", "message", "details"} <= set(body["error"])
    return body


# ---------------------------------------------------------------------------------------------
# Rate limits


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_refills_at_its_rate() -> None:
    ticks = Ticks()
    limiter = RateLimiter(per_minute=60, burst=3, clock=ticks)
    for _ in range(3):
        limiter.take("school")
    with pytest.raises(RateLimited, match="too many requests") as refused:
        limiter.take("school")
    assert refused.value.retry_after == 1  # one request a second comes back
    limiter.take("police")  # another client has its own bucket

    ticks.now += 1.0
    limiter.take("school")
    with pytest.raises(RateLimited):
        limiter.take("school")

    ticks.now += 3600  # a long pause refills only up to the burst
    for _ in range(3):
        limiter.take("school")
    with pytest.raises(RateLimited):
        limiter.take("school")


def test_retry_after_says_how_long_until_the_next_request_fits() -> None:
    ticks = Ticks()
    limiter = RateLimiter(per_minute=6, burst=1, clock=ticks)  # one per 10 s
    limiter.take("school")
    ticks.now += 2.5
    with pytest.raises(RateLimited) as refused:
        limiter.take("school")
    assert refused.value.retry_after == 8  # 7.5 s, rounded up


def test_limits_are_configured_in_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_RATE_LIMIT_PER_MINUTE", "30")
    monkeypatch.setenv("HUB_RATE_LIMIT_BURST", "5")
    settings = Settings()
    limiter = RateLimiter.from_settings(settings)
    assert (limiter.rate, limiter.burst) == (0.5, 5)
    monkeypatch.setenv("HUB_RATE_LIMIT_BURST", "0")
    with pytest.raises(ValueError, match="rate_limit_burst"):
        Settings()


def test_an_agency_client_over_its_limit_gets_429_with_retry_after(make_hub: MakeHub) -> None:
    first = make_hub()
    tight = first.settings.model_copy(update={"rate_limit_burst": 3, "rate_limit_per_minute": 1})
    hub = make_hub(settings=tight)
    case_id = refer_alex(first)["id"]
    school, police = hub.agency_headers(SCHOOL), hub.agency_headers(POLICE)
    coordinator = hub.user_headers("coordinator")

    answers = [hub.client.get(f"/v1/cases/{case_id}", headers=school) for _ in range(4)]

    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    refused = assert_error(answers[-1], 429, "rate_limited")
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert refused["error"]["details"] == {"retry_after": int(answers[-1].headers["retry-after"])}
    assert "subject" not in answers[-1].text
    assert answers[-1].headers["x-content-type-options"] == "nosniff"
    # A fresh token does not reset the limit: it belongs to the client, not the token.
    again = hub.client.get(f"/v1/cases/{case_id}", headers=hub.agency_headers(SCHOOL))
    assert again.status_code == 429
    # Other clients and people are not held back by the school's traffic.
    assert hub.client.get(f"/v1/cases/{case_id}", headers=police).status_code == 200
    assert hub.client.get(f"/v1/cases/{case_id}", headers=coordinator).status_code == 200


# The token endpoint: counted before the client assertion's signature is checked


def test_token_requests_over_a_clients_limit_get_429_until_the_window_passes(
    make_hub: MakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = make_hub()
    tight = first.settings.model_copy(
        update={"token_rate_limit_burst": 3, "token_rate_limit_per_minute": 6}  # then 1 in 10 s
    )
    hub = make_hub(settings=tight)
    ticks = Ticks()
    app_of(hub).state.token_rate_limits.per_client.clock = ticks
    verified: list[str] = []
    check = auth.verify_client_assertion

    def counting(**kwargs: Any) -> Any:
        verified.append(kwargs["assertion"])
        return check(**kwargs)

    monkeypatch.setattr(auth, "verify_client_assertion", counting)

    answers = [hub.token_response(hub.assertion(SCHOOL)) for _ in range(4)]

    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    refused = assert_error(answers[-1], 429, "rate_limited")
    retry_after = int(answers[-1].headers["retry-after"])
    assert retry_after == 10
    assert refused["error"]["details"] == {"retry_after": retry_after}
    assert "access_token" not in answers[-1].text
    assert len(verified) == 3, "the refused assertion's signature was never checked"
    # Other clients are not held back by the school's token requests.
    assert hub.token_response(hub.assertion(POLICE)).status_code == 200

    ticks.now += retry_after - 1
    assert hub.token_response(hub.assertion(SCHOOL)).status_code == 429
    ticks.now += 1
    assert hub.token_response(hub.assertion(SCHOOL)).status_code == 200


def test_token_requests_naming_no_registered_client_are_limited_per_address(
    make_hub: MakeHub,
) -> None:
    first = make_hub()
    tight = first.settings.model_copy(
        update={"token_address_rate_limit_burst": 2, "token_address_rate_limit_per_minute": 1}
    )
    hub = make_hub(settings=tight)
    invented = hub.assertion(SCHOOL, client_id="invented-client")

    answers = [hub.token_response(invented) for _ in range(3)]

    assert [r.status_code for r in answers] == [401, 401, 429]
    assert_error(answers[-1], 429, "rate_limited")
    assert int(answers[-1].headers["retry-after"]) >= 1
    # Another invented id or no JWT at all falls on the same address's bucket.
    assert hub.token_response(hub.assertion(SCHOOL, client_id="another")).status_code == 429
    assert hub.token_response("not-a-jwt").status_code == 429
    # A registered client at that address, and unknown clients elsewhere, are unaffected.
    assert hub.token_response(hub.assertion(SCHOOL)).status_code == 200
    elsewhere = TestClient(app_of(hub), client=("192.0.2.7", 50000))
    answer = elsewhere.post(
        "/v1/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": hub.assertion(SCHOOL, client_id="invented-client"),
        },
    )
    assert_error(answer, 401, "unauthenticated")


def test_token_limits_are_configured_in_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_TOKEN_RATE_LIMIT_PER_MINUTE", "12")
    monkeypatch.setenv("HUB_TOKEN_RATE_LIMIT_BURST", "4")
    monkeypatch.setenv("HUB_TOKEN_ADDRESS_RATE_LIMIT_PER_MINUTE", "30")
    monkeypatch.setenv("HUB_TOKEN_ADDRESS_RATE_LIMIT_BURST", "9")
    limits = TokenRateLimits.from_settings(Settings())
    assert (limits.per_client.rate, limits.per_client.burst) == (0.2, 4)
    assert (limits.per_address.rate, limits.per_address.burst) == (0.5, 9)
    monkeypatch.setenv("HUB_TOKEN_RATE_LIMIT_BURST", "0")
    with pytest.raises(ValueError, match="token_rate_limit_burst"):
        Settings()


def test_address_buckets_group_an_ipv6_host_and_forget_refilled_ones() -> None:
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff:0:1")  # one /64
    assert address_key("2001:db8::1") != address_key("2001:db8:0:1::1")
    assert address_key("::ffff:192.0.2.1") == address_key("192.0.2.1")
    assert address_key("192.0.2.1") != address_key("192.0.2.2")
    ticks = Ticks()
    limiter = RateLimiter(per_minute=60, burst=1, clock=ticks)
    for n in range(1024):
        limiter.take(f"address:{n}")
    assert len(limiter) == 1024

    ticks.now += 2  # every one of those buckets has refilled
    limiter.take("address:new")

    assert len(limiter) == 1
    with pytest.raises(RateLimited):
        limiter.take("address:new")


def test_429_is_documented_for_every_authenticated_operation(hub: Hub) -> None:
    paths = hub.client.get("/openapi.json").json()["paths"]
    secured = [
        (method, path, op)
        for path, ops in paths.items()
        for method, op in ops.items()
        if op.get("security")
    ]
    assert len(secured) > 30
    token = paths["/v1/token"]["post"]
    for method, path, op in [*secured, ("post", "/v1/token", token)]:
        assert "429" in op["responses"], (method, path)
        schema = op["responses"]["429"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorPublic"}


# ---------------------------------------------------------------------------------------------
# Field sizes

LONG = "x" * 5000


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/v1/cases/{case_id}/disclosures",
            {"purpose": "risk_assessment", "categories": ["education"], "justification": LONG},
            "justification",
        ),
        (
            "/v1/cases/{case_id}/access-requests",
            {"purpose": "risk_assessment", "categories": ["education"], "justification": LONG},
            "justification",
        ),
        ("/v1/cases/{case_id}/transitions", {"to": "closed", "reason": LONG}, "reason"),
        (
            "/v1/cases/{case_id}/consents",
            {
                "given_by": "parent",
                "recipients": [SCHOOL],
                "purposes": ["risk_assessment"],
                "categories": ["education"],
                "evidence_ref": LONG,
            },
            "evidence_ref",
        ),
    ],
)
def test_an_overlong_field_is_refused_by_name_without_echoing_it(
    hub: Hub, path: str, body: dict[str, Any], field: str
) -> None:
    case_id = case_in_assessment(hub)
    who = hub.agency_headers(SCHOOL) if "disclosures" in path or "access" in path else None
    headers = who or hub.user_headers("coordinator")

    response = hub.client.post(path.format(case_id=case_id), headers=headers, json=body)

    refused = assert_error(response, 422, "invalid_request")
    assert [p["loc"][-1] for p in refused["error"]["details"]] == [field]
    assert refused["error"]["details"][0]["type"] == "string_too_long"
    assert LONG not in response.text


def test_an_overlong_record_id_in_a_path_is_refused(hub: Hub) -> None:
    response = hub.client.get("/v1/cases/" + "c" * 500, headers=hub.user_headers("coordinator"))
    refused = assert_error(response, 422, "invalid_request")
    assert refused["error"]["details"][0]["loc"] == ["path", "case_id"]


def _unbounded(schema: dict[str, Any], components: dict[str, Any], where: str) -> list[str]:
    """Request fields that take strings or lists without a size limit."""
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    found: list[str] = []
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            found += _unbounded(sub, components, where)
    kind = schema.get("type")
    bounded = {"maxLength", "enum", "const", "format", "pattern"} & set(schema)
    if kind == "string" and not ({"maxLength", "enum", "const"} & set(schema)) and not bounded:
        found.append(where)
    if kind == "array":
        if "maxItems" not in schema:
            found.append(f"{where}[]")
        found += _unbounded(schema.get("items", {}), components, f"{where}[*]")
    for name, sub in schema.get("properties", {}).items():
        found += _unbounded(sub, components, f"{where}.{name}")
    return found


def test_no_new_request_field_is_without_a_size_limit(hub: Hub) -> None:
    document = hub.client.get("/openapi.json").json()
    components = document["components"]["schemas"]
    unbounded: set[str] = set()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                where = f"{parameter['in']}:{parameter['name']}"
                for gap in _unbounded(parameter.get("schema", {}), components, where):
                    unbounded.add(f"{label} {gap}")
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                for gap in _unbounded(media.get("schema", {}), components, "body"):
                    unbounded.add(f"{label} {gap}")
    assert unbounded == set()


# ---------------------------------------------------------------------------------------------
# Security headers on every kind of answer


def _answers(hub: Hub) -> dict[str, Any]:
    case_id = case_in_assessment(hub)
    consent = record_consent(hub, case_id)
    coordinator = hub.user_headers("coordinator")
    school = hub.agency_headers(SCHOOL)
    answers = {
        "200 json": hub.client.get(f"/v1/cases/{case_id}", headers=coordinator),
        "200 text": hub.client.get("/v1/audit/key"),
        "200 html": hub.client.get(
            f"/v1/consents/{consent['id']}/receipt",
            headers={**coordinator, "Accept": "text/html"},
        ),
        "200 docs": hub.client.get("/docs"),
        "400": hub.client.post(
            "/v1/login", content=b"{", headers={"Content-Type": "application/json"}
        ),
        "401": hub.client.get(f"/v1/cases/{case_id}"),
        "403": hub.client.post(
            f"/v1/cases/{case_id}/transitions", headers=school, json={"to": "closed", "reason": "x"}
        ),
        "404 route": hub.client.get("/v1/nowhere"),
        "404 record": hub.client.get("/v1/cases/unknown", headers=coordinator),
        "405": hub.client.delete(f"/v1/cases/{case_id}", headers=coordinator),
        "413": hub.client.post("/v1/referrals", headers=coordinator, content=b"x" * 100_000),
        "415": hub.client.post(
            "/v1/referrals", headers={**coordinator, "Content-Type": "text/plain"}, content=b"x"
        ),
        "422": hub.client.post("/v1/login", json={"username": ""}),
    }
    app_of(hub).state.rate_limiter = RateLimiter(per_minute=1, burst=1)
    hub.client.get("/v1/cases/x", headers=school)
    answers["429"] = hub.client.get("/v1/cases/x", headers=school)
    return answers


def test_every_kind_of_answer_carries_the_security_headers(hub: Hub) -> None:
    answers = _answers(hub)
    assert {name: r.status_code for name, r in answers.items()} == {
        name: int(name.split()[0]) for name in answers
    }
    for name, response in answers.items():
        headers = response.headers
        csp: dict[str, str] = dict(
            d.strip().split(" ", 1) for d in headers["content-security-policy"].split(";")
        )
        script = csp.get("script-src", csp["default-src"])
        assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script, name
        assert csp["frame-ancestors"] == "'none'", name
        assert csp["object-src"] == "'none'", name
        assert headers["x-content-type-options"] == "nosniff", name
        assert headers["referrer-policy"] == "no-referrer", name
        assert headers["x-frame-options"] == "DENY", name
        if response.status_code >= 400:
            assert set(response.json()) == {"error"}, name
