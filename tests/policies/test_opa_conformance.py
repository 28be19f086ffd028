"""The same policy files and data give the same answers in real OPA and in the embedded engine.

Real OPA here is the OPA v1.20.2 Go evaluator embedded by the `opa-golib-python-bindings`
package (import name `opa_bindings`), installed with
`pip install --ignore-requires-python opa-golib-python-bindings==0.4.4` (its metadata asks for
Python 3.14, but the wheel is a plain Go c-shared library driven through ctypes and works on
3.11). `make` installs it hash-pinned from requirements/opa.txt; it is imported unconditionally,
so the conformance check can never quietly disappear.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opa_bindings import OpaEngine, OpaUndefinedError

import policies
from hub.policy import EmbeddedPolicyEngine, discover_rego_tests
from tests.policies.inputs import CONSENT, GRANT, base_document, merge


@pytest.fixture(scope="module")
def opa() -> Iterator[Any]:
    engine = OpaEngine()
    try:
        for path, text in [*policies.policy_modules(), *policies.test_modules()]:
            engine.add_policy(path, text)
        engine.add_data(policies.policy_data())
        yield engine
    finally:
        engine.close()


@pytest.fixture(scope="module")
def embedded() -> Iterator[EmbeddedPolicyEngine]:
    with EmbeddedPolicyEngine.from_policies() as engine:
        yield engine


def _doc(patch: dict[str, Any]) -> dict[str, Any]:
    return merge(base_document(), patch)


def _without(patch: dict[str, Any], section: str, key: str) -> dict[str, Any]:
    document = _doc(patch)
    del document[section][key]
    return document


SCREENING_CONSENT = merge(
    CONSENT, {"purposes": ["screening"], "categories": ["behavioural_indicators"]}
)

INPUTS: dict[str, dict[str, Any]] = {
    "allow-consent": _doc({}),
    "allow-grant": _doc(
        {"request": {"categories": ["education", "social_care"]}, "consents": [], "grants": [GRANT]}
    ),
    "allow-consent-and-grant": _doc(
        {"request": {"categories": ["identity", "education"]}, "grants": [GRANT]}
    ),
    "allow-two-grant-bases": _doc(
        {
            "request": {"categories": ["education"]},
            "consents": [],
            "grants": [GRANT, merge(GRANT, {"id": "grant-0", "legal_basis": "legal_obligation"})],
        }
    ),
    "allow-screening-referred": _doc(
        {
            "case": {"stage": "referred", "subject_is_minor": True},
            "request": {
                "purpose": "screening",
                "categories": ["behavioural_indicators", "behavioural_indicators"],
                "break_glass": True,
            },
            "consents": [SCREENING_CONSENT, merge(CONSENT, {"id": "consent-0"})],
        }
    ),
    "allow-offset-times": _doc(
        {
            "now": "2026-11-28T13:00:00+01:00",
            "consents": [merge(CONSENT, {"valid_until": "2026-11-28T13:00:00.000001+01:00"})],
        }
    ),
    "deny-other-panel": _doc({"requester": {"panels": ["panel-2", "panel-3"]}}),
    "deny-unknown-purpose": _doc({"request": {"purpose": "curiosity"}}),
    "deny-stage": _doc({"case": {"stage": "screening"}}),
    "deny-closed": _doc({"case": {"stage": "closed"}}),
    "deny-unknown-stage": _doc({"case": {"stage": "archived"}}),
    "deny-unknown-category": _doc({"request": {"categories": ["religion", "ethnicity"]}}),
    "deny-category-for-purpose": _doc(
        {
            "request": {"categories": ["identity", "health"]},
            "consents": [merge(CONSENT, {"categories": ["identity", "health"]})],
        }
    ),
    "deny-no-categories": _doc({"request": {"categories": []}}),
    "deny-withdrawn-consent": _doc({"consents": [merge(CONSENT, {"state": "withdrawn"})]}),
    "deny-expired-grant": _doc(
        {
            "request": {"categories": ["education"]},
            "consents": [],
            "grants": [merge(GRANT, {"expires_at": "2026-11-28T12:00:00Z"})],
        }
    ),
    "deny-mixed-legal-basis": _doc(
        {
            "request": {"categories": ["education", "social_care"]},
            "consents": [],
            "grants": [
                merge(GRANT, {"categories": ["education"]}),
                merge(
                    GRANT,
                    {"id": "g2", "categories": ["social_care"], "legal_basis": "legal_obligation"},
                ),
            ],
        }
    ),
    "deny-many-reasons": _doc(
        {
            "requester": {"panels": []},
            "case": {"stage": "intervention"},
            "request": {"purpose": "screening", "categories": ["health", "nonsense", "identity"]},
            "consents": [],
        }
    ),
    "deny-missing-case-panel": _without({}, "case", "panel"),
    "deny-missing-agency": _without({}, "requester", "agency"),
    "deny-missing-valid-until": _doc(
        {"consents": [{k: v for k, v in CONSENT.items() if k != "valid_until"}]}
    ),
    "deny-empty": {},
}


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_same_answer_as_opa(opa: Any, embedded: EmbeddedPolicyEngine, name: str) -> None:
    document = INPUTS[name]
    expected = opa.eval_document("hub.decision.result", document)
    decision = embedded.decide_document(document)
    assert decision.model_dump(exclude={"revision"}) == expected
    assert decision.allow is name.startswith("allow-")


def test_inputs_cover_every_reason_code(opa: Any) -> None:
    seen = {
        reason["code"]
        for document in INPUTS.values()
        for reason in opa.eval_document("hub.decision.result", document)["reasons"]
    }
    assert seen == {
        "covered_by_consent",
        "covered_by_grant",
        "not_panel_member",
        "unknown_purpose",
        "purpose_not_allowed_at_stage",
        "unknown_category",
        "category_not_allowed_for_purpose",
        "no_categories",
        "category_not_covered",
        "mixed_legal_basis",
    }


REGO_TESTS = [rule for _path, text in policies.test_modules() for rule in discover_rego_tests(text)]


@pytest.mark.parametrize("rule", REGO_TESTS, ids=lambda rule: rule.rsplit(".", 1)[-1])
def test_rego_test_passes_in_opa(opa: Any, rule: str) -> None:
    try:
        value = opa.eval_document(rule.removeprefix("data."))
    except OpaUndefinedError:
        pytest.fail(f"{rule} is undefined in OPA: a condition in the test did not hold")
    assert value is True


def test_a_failing_rego_test_fails_in_opa() -> None:
    # The check above would prove nothing if OPA answered true for a failing test.
    engine = OpaEngine()
    try:
        engine.add_policy("t_test.rego", "package t_test\n\ntest_fails if 1 == 2\n")
        with pytest.raises(OpaUndefinedError):
            engine.eval_document("t_test.test_fails")
    finally:
        engine.close()
