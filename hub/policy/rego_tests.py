"""Runs the Rego unit tests (``*_test.rego``) in the embedded engine.

regorus has no test runner of its own, so this is a small one with OPA's rules: a test is a
rule whose name starts with ``test_``, and it passes when it evaluates to ``true``; undefined,
any other value or an evaluation error fails it.

The tests run in regorus's interpreter (the hub decides with regorus's compiled VM; the
conformance tests tie that to OPA). Modules are loaded in the order given: when a package is
split over several modules, the interpreter evaluates it correctly under ``with`` only if the
module holding the package's top rules comes first, which ``policies.policy_modules()``
ensures by path order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import regorus

import policies

_PACKAGE = re.compile(r"^package\s+([A-Za-z_][\w.]*)\s*$", re.MULTILINE)
# `opa fmt` puts every rule head at the start of a line, so a test is a line that starts with
# its name. This reads the source rather than regorus's AST, whose JSON form is not a stable
# interface.
_TEST_RULE = re.compile(r"^(test_\w+)\b", re.MULTILINE)


@dataclass(frozen=True)
class RegoTestResult:
    """One Rego test: its full rule path, whether it passed, and why not."""

    rule: str
    passed: bool
    detail: str = ""


def discover_rego_tests(text: str) -> list[str]:
    """The full paths (``data.<package>.test_...``) of the tests in one module, in order.

    Raises:
        ValueError: the module has no ``package`` line.
    """
    package = _PACKAGE.search(text)
    if package is None:
        raise ValueError("the Rego module has no package line")
    names = dict.fromkeys(_TEST_RULE.findall(text))
    return [f"data.{package.group(1)}.{name}" for name in names]


def run_rego_tests(
    *,
    modules: Sequence[tuple[str, str]] | None = None,
    tests: Sequence[tuple[str, str]] | None = None,
    data: Mapping[str, Any] | None = None,
) -> list[RegoTestResult]:
    """Run every Rego test in ``tests`` against ``modules`` and ``data``.

    By default these are the shipped policies, tests and data. The engine is made and used on
    the calling thread only.

    Raises:
        ValueError: a test module has no ``package`` line.
    """
    modules = policies.policy_modules() if modules is None else modules
    tests = policies.test_modules() if tests is None else tests
    data = policies.policy_data() if data is None else data
    engine = regorus.Engine()
    for path, text in [*modules, *tests]:
        engine.add_policy(path, text)
    engine.add_data_json(json.dumps(data))
    return [_run_one(engine, rule) for _path, text in tests for rule in discover_rego_tests(text)]


def _run_one(engine: Any, rule: str) -> RegoTestResult:
    try:
        value = engine.eval_rule(rule)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        # A Rust panic arrives as a BaseException. Test fixtures hold no one's data, so the
        # engine's own message is safe to show here, without the Rust backtrace.
        message = str(exc).split("Stack backtrace:", 1)[0].strip()
        return RegoTestResult(rule, False, f"error: {type(exc).__name__}: {message}")
    if value is True:
        return RegoTestResult(rule, True)
    if value is None:
        return RegoTestResult(rule, False, "undefined: a condition in the test did not hold")
    return RegoTestResult(rule, False, f"evaluated to {value!r}, not true")
