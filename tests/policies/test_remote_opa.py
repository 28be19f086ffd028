"""RemoteOpaPolicyEngine against an OPA-compatible server on a real loopback socket.

The server (tests/policies/opa_server.py) evaluates with the real OPA evaluator, so the first
tests check that a decision asked over OPA's Data API is the embedded engine's decision; the
rest turn the server's knobs to check that every failure is a PolicyEngineError (fail closed)
and that one transient failure is retried once.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

import policies
from hub.demo.sources import SourceServer
from hub.policy import (
    EmbeddedPolicyEngine,
    PolicyDecision,
    PolicyEngineError,
    PolicyInput,
    RemoteOpaPolicyEngine,
)
from tests.policies.inputs import CONSENT, GRANT, base_document, merge
from tests.policies.opa_server import Answer, OpaKnobs, knobs, opa_server_app
from tests.ports import free_port

PATCHES: dict[str, dict[str, Any]] = {
    "consent": {},
    "grant": {
        "request": {"categories": ["education", "social_care"]},
        "consents": [],
        "grants": [GRANT],
    },
    "consent-and-grant": {"request": {"categories": ["identity", "education"]}, "grants": [GRANT]},
    "other-panel": {"requester": {"panels": ["panel-2"]}},
    "unknown-purpose": {"request": {"purpose": "curiosity"}},
    "closed-case": {"case": {"stage": "closed"}},
    "unknown-category": {"request": {"categories": ["religion"]}},
    "no-categories": {"request": {"categories": []}},
    "withdrawn-consent": {"consents": [merge(CONSENT, {"state": "withdrawn"})]},
    "expired-grant": {
        "request": {"categories": ["education"]},
        "consents": [],
        "grants": [merge(GRANT, {"expires_at": "2026-11-28T12:00:00Z"})],
    },
    "many-reasons": {
        "requester": {"panels": []},
        "case": {"stage": "intervention"},
        "request": {"purpose": "screening", "categories": ["health", "nonsense", "identity"]},
        "consents": [],
    },
}


def _input(name: str) -> PolicyInput:
    return PolicyInput.model_validate(merge(base_document(), PATCHES[name]))


@pytest.fixture(scope="module")
def opa_app() -> Starlette:
    return opa_server_app()


@pytest.fixture(scope="module")
def opa_url(opa_app: Starlette) -> Iterator[str]:
    with SourceServer(opa_app, host="127.0.0.1", port=0) as server:
        yield server.url


@pytest.fixture
def opa(opa_app: Starlette) -> Iterator[OpaKnobs]:
    settings = knobs(opa_app)
    settings.reset()
    yield settings
    settings.reset()


@pytest.fixture(scope="module")
def embedded() -> Iterator[EmbeddedPolicyEngine]:
    with EmbeddedPolicyEngine.from_policies() as engine:
        yield engine


@pytest.fixture
def remote(opa_url: str, opa: OpaKnobs) -> Iterator[RemoteOpaPolicyEngine]:
    with RemoteOpaPolicyEngine.from_url(opa_url, timeout=0.3) as engine:
        yield engine


# --- Same decisions as the embedded engine --------------------------------------------------


@pytest.mark.parametrize("name", sorted(PATCHES))
def test_same_decision_as_embedded(
    remote: RemoteOpaPolicyEngine, embedded: EmbeddedPolicyEngine, name: str
) -> None:
    policy_input = _input(name)
    assert remote.decide(policy_input) == embedded.decide(policy_input)


def test_inputs_give_both_allows_and_denies(embedded: EmbeddedPolicyEngine) -> None:
    # Otherwise the comparison above could pass on denies alone.
    outcomes = {embedded.decide(_input(name)).allow for name in PATCHES}
    assert outcomes == {True, False}


def test_raw_document_same_decision_as_embedded(
    remote: RemoteOpaPolicyEngine, embedded: EmbeddedPolicyEngine
) -> None:
    document = base_document()
    del document["case"]["panel"]
    assert remote.decide_document(document) == embedded.decide_document(document)
    assert remote.decide_document({}) == embedded.decide_document({})


def test_revision_is_the_deployed_one(opa_url: str, opa: OpaKnobs) -> None:
    with RemoteOpaPolicyEngine.from_url(opa_url) as default:
        assert default.revision == policies.revision()
        assert default.decide(_input("consent")).revision == policies.revision()
    with RemoteOpaPolicyEngine(opa_url, revision="rev-7") as pinned:
        assert pinned.decide(_input("consent")).revision == "rev-7"


def test_many_threads_share_one_engine(
    remote: RemoteOpaPolicyEngine, embedded: EmbeddedPolicyEngine
) -> None:
    names = sorted(PATCHES) * 4
    with ThreadPoolExecutor(max_workers=8) as pool:
        decisions = list(pool.map(lambda name: remote.decide(_input(name)), names))
    expected = {name: embedded.decide(_input(name)) for name in PATCHES}
    assert decisions == [expected[name] for name in names]


def test_bearer_token_is_sent(opa_url: str, opa: OpaKnobs) -> None:
    opa.token = "opa-test-token"
    with RemoteOpaPolicyEngine.from_url(opa_url, token="opa-test-token") as engine:
        assert isinstance(engine.decide(_input("consent")), PolicyDecision)


# --- Retried once ---------------------------------------------------------------------------


def test_a_single_500_is_retried(
    remote: RemoteOpaPolicyEngine, embedded: EmbeddedPolicyEngine, opa: OpaKnobs
) -> None:
    opa.fail_next = 1
    assert remote.decide(_input("consent")) == embedded.decide(_input("consent"))
    assert opa.requests == 2


def test_a_single_timeout_is_retried(
    remote: RemoteOpaPolicyEngine, embedded: EmbeddedPolicyEngine, opa: OpaKnobs
) -> None:
    opa.slow_next, opa.slow_delay = 1, 0.8
    assert remote.decide(_input("grant")) == embedded.decide(_input("grant"))
    assert opa.requests == 2


# --- Fails closed ---------------------------------------------------------------------------


def test_server_down() -> None:
    engine = RemoteOpaPolicyEngine.from_url(f"http://127.0.0.1:{free_port()}")
    with engine, pytest.raises(PolicyEngineError, match=r"could not be reached .*\(2 attempts\)"):
        engine.decide(_input("consent"))


def test_server_too_slow(opa_url: str, opa: OpaKnobs) -> None:
    opa.delay = 0.8
    engine = RemoteOpaPolicyEngine.from_url(opa_url, timeout=0.2)
    with engine, pytest.raises(PolicyEngineError, match=r"not answer within 0\.2 s \(2 attempts\)"):
        engine.decide(_input("consent"))
    assert opa.requests == 2


def test_server_answers_500(remote: RemoteOpaPolicyEngine, opa: OpaKnobs) -> None:
    opa.fail_status = 500
    with pytest.raises(PolicyEngineError, match=r"OPA answered HTTP 500 \(2 attempts\)"):
        remote.decide(_input("consent"))
    assert opa.requests == 2


@pytest.mark.parametrize("status", [400, 404])
def test_4xx_is_not_retried(remote: RemoteOpaPolicyEngine, opa: OpaKnobs, status: int) -> None:
    opa.fail_status = status
    with pytest.raises(PolicyEngineError, match=f"OPA answered HTTP {status}$"):
        remote.decide(_input("consent"))
    assert opa.requests == 1


def test_missing_token_is_refused(remote: RemoteOpaPolicyEngine, opa: OpaKnobs) -> None:
    opa.token = "opa-test-token"
    with pytest.raises(PolicyEngineError, match="OPA answered HTTP 401"):
        remote.decide(_input("consent"))


def test_undefined_result(remote: RemoteOpaPolicyEngine, opa: OpaKnobs) -> None:
    opa.answer = Answer.UNDEFINED
    with pytest.raises(PolicyEngineError, match=r"data\.hub\.decision\.result is undefined"):
        remote.decide(_input("consent"))
    assert opa.requests == 1


def test_answer_not_json(remote: RemoteOpaPolicyEngine, opa: OpaKnobs) -> None:
    opa.answer = Answer.NOT_JSON
    with pytest.raises(PolicyEngineError, match="OPA's answer is not JSON"):
        remote.decide(_input("consent"))


_DENY = {
    "allow": False,
    "permitted_categories": [],
    "legal_basis": None,
    "obligations": [],
    "reasons": [{"code": "x", "message": "y"}],
}


@pytest.mark.parametrize(
    ("result", "match"),
    [
        (None, "is undefined"),
        (["allow"], "is a list, not an object"),
        ({**_DENY, "allow": "false"}, "allow: bool_type"),
        ({**_DENY, "revision": "forged"}, "must not set the revision"),
        ({**_DENY, "extra": 1}, "extra: extra_forbidden"),
        ({**_DENY, "reasons": []}, "a deny must give at least one reason"),
        (
            {**_DENY, "allow": True, "legal_basis": "consent"},
            "an allow must permit at least one category",
        ),
    ],
    ids=["null", "list", "string-allow", "revision", "extra-field", "no-reason", "empty-allow"],
)
def test_malformed_decision(
    remote: RemoteOpaPolicyEngine, opa: OpaKnobs, result: Any, match: str
) -> None:
    opa.answer, opa.fixed_result = Answer.FIXED, result
    with pytest.raises(PolicyEngineError, match=match):
        remote.decide(_input("consent"))


def test_closed_engine(opa_url: str, opa: OpaKnobs) -> None:
    engine = RemoteOpaPolicyEngine.from_url(opa_url)
    engine.close()
    engine.close()
    with pytest.raises(PolicyEngineError, match="the policy engine is closed"):
        engine.decide(_input("consent"))
    assert opa.requests == 0


def test_unserialisable_document(remote: RemoteOpaPolicyEngine) -> None:
    with pytest.raises(PolicyEngineError, match="not JSON-serialisable"):
        remote.decide_document({"now": float("nan")})


@pytest.mark.parametrize(
    ("url", "options", "match"),
    [
        ("ftp://127.0.0.1:8181", {}, "http or https URL"),
        ("http://", {}, "http or https URL"),
        ("http://127.0.0.1:8181?x=1", {}, "query or fragment"),
        ("http://127.0.0.1:8181", {"timeout": 0.0}, "positive number of seconds"),
        ("http://127.0.0.1:8181", {"timeout": float("inf")}, "positive number of seconds"),
        ("http://127.0.0.1:8181", {"token": "a\nb"}, "single line"),
        ("http://127.0.0.1:8181", {"token": ""}, "single line"),
    ],
)
def test_bad_settings(url: str, options: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RemoteOpaPolicyEngine.from_url(url, **options)


# --- The test server speaks OPA's Data API --------------------------------------------------


def test_server_speaks_opas_data_api(opa_url: str, opa: OpaKnobs) -> None:
    with httpx.Client(base_url=opa_url, timeout=5) as client:
        assert client.get("/health").json() == {}
        answer = client.post("/v1/data/hub/decision/result", json={"input": base_document()})
        assert answer.status_code == 200
        assert set(answer.json()) == {"result", "decision_id"}
        undefined = client.post("/v1/data/hub/nothing_here", json={"input": {}})
        assert undefined.status_code == 200
        assert set(undefined.json()) == {"decision_id"}
        no_input = client.post("/v1/data/hub/decision/result", json={})
        assert no_input.json()["warning"]["code"] == "api_usage_warning"
        malformed = client.post(
            "/v1/data/hub/decision/result",
            content=b'{"input": ',
            headers={"Content-Type": "application/json"},
        )
        assert malformed.status_code == 400
        assert malformed.json()["code"] == "invalid_parameter"
        assert set(malformed.json()) == {"code", "message"}
