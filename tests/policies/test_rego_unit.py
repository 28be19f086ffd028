"""The Rego unit tests (`*_test.rego`), run in the embedded engine: one pytest test each."""

from __future__ import annotations

import pytest

import policies
from hub.policy import RegoTestResult, discover_rego_tests, run_rego_tests

REGO_TESTS = [rule for _path, text in policies.test_modules() for rule in discover_rego_tests(text)]


@pytest.fixture(scope="module")
def results() -> dict[str, RegoTestResult]:
    return {result.rule: result for result in run_rego_tests()}


def test_rego_tests_are_found() -> None:
    assert len(REGO_TESTS) >= 30
    assert "data.hub.decision_test.test_allow_with_consent" in REGO_TESTS
    assert len(set(REGO_TESTS)) == len(REGO_TESTS)


@pytest.mark.parametrize("rule", REGO_TESTS, ids=lambda rule: rule.rsplit(".", 1)[-1])
def test_rego(results: dict[str, RegoTestResult], rule: str) -> None:
    result = results[rule]
    assert result.passed, f"{rule}: {result.detail}"


def test_every_deny_reason_has_a_rego_test() -> None:
    decision_text = dict(policies.policy_modules())["hub/decision.rego"]
    tests_text = dict(policies.test_modules())["hub/decision_test.rego"]
    codes = {
        line.split('"code": "', 1)[1].split('"', 1)[0]
        for line in decision_text.splitlines()
        if '"code": "' in line
    }
    assert codes >= {"not_panel_member", "category_not_covered", "covered_by_grant"}
    for code in codes:
        assert f'"{code}"' in tests_text, f"no Rego test names the reason {code}"


# --------------------------------------------------------------------------- the runner itself

POLICY = ("p.rego", "package p\n\nanswer := input.x\n")
TESTS = (
    "p_test.rego",
    "package p_test\n\nimport data.p\n\n"
    'test_passes if p.answer == 1 with input as {"x": 1}\n\n'
    'test_fails if p.answer == 2 with input as {"x": 1}\n\n'
    "test_not_true := 5\n\n"
    'test_errors if time.parse_rfc3339_ns("not a time")\n',
)


def test_discovery_reads_package_and_rule_names() -> None:
    assert discover_rego_tests(TESTS[1]) == [
        "data.p_test.test_passes",
        "data.p_test.test_fails",
        "data.p_test.test_not_true",
        "data.p_test.test_errors",
    ]


def test_discovery_needs_a_package() -> None:
    with pytest.raises(ValueError, match="no package line"):
        discover_rego_tests("test_x if true\n")


def test_runner_reports_failures() -> None:
    results = {
        r.rule.rsplit(".", 1)[-1]: r
        for r in run_rego_tests(modules=[POLICY], tests=[TESTS], data={})
    }
    assert results["test_passes"] == RegoTestResult("data.p_test.test_passes", True)
    assert not results["test_fails"].passed
    assert "undefined" in results["test_fails"].detail
    assert not results["test_not_true"].passed
    assert "5" in results["test_not_true"].detail
    assert not results["test_errors"].passed
    assert results["test_errors"].detail.startswith("error: RuntimeError")
    assert "Stack backtrace" not in results["test_errors"].detail


def test_a_broken_policy_fails_the_shipped_tests() -> None:
    # Allowing everything must make the shipped Rego tests fail, or they prove nothing.
    broken = [
        (path, text.replace("default allow := false", "default allow := true"))
        for path, text in policies.policy_modules()
    ]
    assert broken != policies.policy_modules()
    results = run_rego_tests(modules=broken)
    failed = {r.rule.rsplit(".", 1)[-1] for r in results if not r.passed}
    assert "test_deny_not_panel_member" in failed
    assert "test_deny_empty_input" in failed
