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
    assert len(REGO_TESTS) >= 80
    assert "data.hub.decision_test.test_allow_with_consent" in REGO_TESTS
    assert len(set(REGO_TESTS)) == len(REGO_TESTS)


def test_every_policy_module_has_its_tests_beside_it() -> None:
    tests = dict(policies.test_modules())
    for path, _text in policies.policy_modules():
        test_path = path.removesuffix(".rego") + "_test.rego"
        assert test_path in tests, f"{path} has no {test_path}"
        assert discover_rego_tests(tests[test_path]), f"{test_path} has no test"


def test_the_main_module_loads_first() -> None:
    # regorus's interpreter, which runs these tests, evaluates a package split over several
    # modules correctly under `with` only when the module holding `allow` and `result` is
    # loaded first (OPA does not care). Paths sort "hub/decision.rego" before
    # "hub/decision/...", and this keeps it so.
    assert policies.policy_modules()[0][0] == "hub/decision.rego"


@pytest.mark.parametrize("rule", REGO_TESTS, ids=lambda rule: rule.rsplit(".", 1)[-1])
def test_rego(results: dict[str, RegoTestResult], rule: str) -> None:
    result = results[rule]
    assert result.passed, f"{rule}: {result.detail}"


def test_every_reason_has_a_rego_test() -> None:
    policy_text = "\n".join(text for _path, text in policies.policy_modules())
    tests_text = "\n".join(text for _path, text in policies.test_modules())
    codes = {
        line.split('"code": "', 1)[1].split('"', 1)[0]
        for line in policy_text.splitlines()
        if '"code": "' in line
    }
    assert len(codes) >= 25
    for code in codes:
        assert f'"{code}"' in tests_text, f"no Rego test names the reason {code}"


def test_every_rule_is_documented() -> None:
    # Every rule head in a policy module follows a METADATA block with a title and a
    # description.
    for path, text in policies.policy_modules():
        lines = text.splitlines()
        for number, line in enumerate(lines):
            if not line or line[0] in "#\t }]" or line.startswith(("package ", "import ")):
                continue
            before = lines[:number]
            block = []
            for previous in reversed(before):
                if not previous.startswith("#"):
                    break
                block.append(previous)
            assert "# METADATA" in block, f"{path}:{number + 1}: {line!r} has no METADATA"
            assert any(entry.startswith("# title: ") for entry in block), f"{path}:{number + 1}"
            assert any(entry.startswith("# description: ") for entry in block), (
                f"{path}:{number + 1}"
            )


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
    assert "test_deny_break_glass_at_72h" in failed
