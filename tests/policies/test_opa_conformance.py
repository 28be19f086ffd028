"""The same policy files and data give the same answers in real OPA and in the embedded engine.

Real OPA here is the OPA v1.20.2 Go evaluator embedded by the `opa-golib-python-bindings`
package (import name `opa_bindings`), installed with
`pip install --ignore-requires-python opa-golib-python-bindings==0.4.4` (its metadata asks for
Python 3.14, but the wheel is a plain Go c-shared library driven through ctypes and works on
3.11). `make` installs it hash-pinned from requirements/opa.txt; it is imported unconditionally,
so the conformance check can never quietly disappear.

The embedded engine evaluates with regorus's compiled VM, a different evaluator from the
regorus interpreter that runs the Rego unit tests, so these checks are what ties the hub's
actual decisions to OPA's.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from typing import Any

import pytest
from opa_bindings import OpaEngine, OpaUndefinedError

import policies
from hub.policy import EmbeddedPolicyEngine, discover_rego_tests
from tests.policies.inputs import PROFILES, STAGES, VARIED


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


def _opa_decision(opa: Any, document: dict[str, Any]) -> Any:
    return opa.eval_document("hub.decision.result", document)


@pytest.mark.parametrize("name", sorted(VARIED))
def test_same_answer_as_opa(opa: Any, embedded: EmbeddedPolicyEngine, name: str) -> None:
    document = VARIED[name]
    expected = _opa_decision(opa, document)
    decision = embedded.decide_document(document)
    assert decision.model_dump(exclude={"revision"}) == expected
    assert decision.allow is name.startswith("allow-")


ALL_CODES = {
    # allow
    "covered_by_consent",
    "covered_by_grant",
    "covered_by_profile",
    "covered_by_break_glass",
    # deny
    "not_panel_member",
    "unknown_profile",
    "unknown_purpose",
    "purpose_not_allowed_at_stage",
    "unknown_category",
    "category_not_allowed_for_purpose",
    "no_categories",
    "identity_before_assessment",
    "category_not_released_at_stage",
    "not_designated_agency",
    "not_lead_or_assisting_agency",
    "case_closed",
    "category_not_covered",
    "special_category_needs_explicit_consent",
    "minor_consent_not_from_parent",
    "mixed_legal_basis",
    "break_glass_wrong_purpose",
    "break_glass_needs_justification",
    "break_glass_category_not_allowed",
    "break_glass_expired",
    "safeguarding_emergency_needs_break_glass",
    "no_rule_allowed",
}


def test_inputs_cover_every_reason_code(opa: Any) -> None:
    seen = {
        reason["code"]
        for document in VARIED.values()
        for reason in _opa_decision(opa, document)["reasons"]
    }
    assert seen == ALL_CODES


def test_the_policy_names_exactly_these_codes() -> None:
    # A new reason code must be added here, and so reached by an input above.
    text = "\n".join(text for _path, text in policies.policy_modules())
    named = {
        line.split('"code": "', 1)[1].split('"', 1)[0]
        for line in text.splitlines()
        if '"code": "' in line
    }
    assert named == ALL_CODES


def test_inputs_cover_every_profile_and_stage() -> None:
    pairs = {
        (document["case"]["profile"], document["case"]["stage"])
        for document in VARIED.values()
        if isinstance(document.get("case"), dict)
        and "profile" in document["case"]
        and "stage" in document["case"]
    }
    assert {(profile, stage) for profile in PROFILES for stage in STAGES} <= pairs
    assert set(PROFILES) == set(policies.policy_data()["hub"]["config"]["profiles"])


# Values a mutation may put in place of one field: other valid values, wrong types, absence.
_MUTATIONS: dict[tuple[str, ...], list[Any]] = {
    ("requester", "agency"): ["agency-school", "agency-social", None, 7],
    ("requester", "panels"): [[], ["panel-2"], "panel-1", None],
    ("case", "profile"): [*PROFILES, "unknown", None],
    ("case", "stage"): [*STAGES, "archived", None],
    ("case", "lead_agency"): ["agency-police", None, 3],
    ("case", "designated_agencies"): [[], ["agency-school"], "agency-police", None],
    ("case", "subject_age"): [None, 0, 15, 16, 17, 18, 30, "30", -1],
    ("request", "purpose"): [
        "screening",
        "risk_assessment",
        "intervention_planning",
        "safeguarding_emergency",
        "oversight",
        "curiosity",
        None,
    ],
    ("request", "categories"): [
        [],
        ["identity"],
        ["behavioural_indicators", "protective_factors"],
        ["health"],
        ["education", "social_care"],
        ["identity", "health", "education"],
        ["religion"],
        "identity",
        None,
    ],
    ("request", "justification"): ["", "short", "x" * 19, "x" * 20, " " * 30, None],
    ("request", "break_glass"): [True, False, "true", None],
    ("request", "break_glass_since"): [
        None,
        "2026-11-25T12:00:00Z",
        "2026-11-25T12:00:01Z",
        "2026-11-28T12:00:01Z",
        17,
    ],
    ("now",): ["2026-11-28T12:00:00Z", "2026-12-01T00:00:00Z", "2026-11-28T13:00:00+01:00", None],
}
_CONSENT_MUTATIONS: dict[str, list[Any]] = {
    "given_by": ["subject", "parent", "guardian", "representative", None],
    "explicit": [True, False, "true"],
    "state": ["active", "withdrawn"],
    "valid_until": [None, "2026-11-28T12:00:00Z", "2026-11-28T12:00:01Z"],
    "purposes": [
        ["screening"],
        ["risk_assessment", "intervention_planning", "safeguarding_emergency"],
    ],
    "categories": [["identity", "contact"], ["health"], ["behavioural_indicators", "education"]],
}
_MISSING = object()


def _mutate(rng: random.Random, document: dict[str, Any]) -> dict[str, Any]:
    mutated = copy.deepcopy(document)
    for path in rng.sample(sorted(_MUTATIONS), k=rng.randint(1, 4)):
        value = rng.choice([*_MUTATIONS[path], _MISSING])
        node = mutated
        for key in path[:-1]:
            node = node.setdefault(key, {})
        if value is _MISSING:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = copy.deepcopy(value)
    for consent in mutated.get("consents", []):
        for field in rng.sample(sorted(_CONSENT_MUTATIONS), k=rng.randint(0, 2)):
            consent[field] = copy.deepcopy(rng.choice(_CONSENT_MUTATIONS[field]))
    return mutated


def test_random_mutations_agree_with_opa(opa: Any, embedded: EmbeddedPolicyEngine) -> None:
    # Seeded, so a failure is reproducible: each round mutates one to four fields (and the
    # consents) of a varied document, and both engines must give the same decision, or both
    # refuse to decide.
    rng = random.Random(20261128)
    names = sorted(VARIED)
    allowed = 0
    for _round in range(400):
        document = _mutate(rng, VARIED[rng.choice(names)])
        try:
            expected = _opa_decision(opa, document)
        except Exception:  # OPA refused (e.g. a malformed time): it must not allow
            expected = None
        try:
            decision = embedded.decide_document(document).model_dump(exclude={"revision"})
        except Exception:  # the embedded engine refused: the hub denies
            decision = None
        if expected is None or decision is None:
            assert not (expected or {}).get("allow") and not (decision or {}).get("allow")
            continue
        assert decision == expected, document
        allowed += expected["allow"]
    assert allowed > 20  # the mutations must not all be trivially denied


REGO_TESTS = [rule for _path, text in policies.test_modules() for rule in discover_rego_tests(text)]


@pytest.mark.parametrize("rule", REGO_TESTS, ids=lambda rule: rule.removeprefix("data."))
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
