"""Property-based fuzzing of the hub's own OpenAPI document with schemathesis.

Every operation is called with generated requests, schema-valid and schema-invalid, as each
role of the panel, with real record ids and made-up ones. Each answer must not be a 5xx, must
have a documented status, content type and body, and every error must be in the one shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode, Response
from schemathesis.checks import CheckContext, load_all_checks
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err

load_all_checks()
from schemathesis.checks import (  # noqa: E402  (registered by load_all_checks)
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

ERROR_KEYS = {"code", "message", "details"}


@schemathesis.check
def one_error_shape(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """Every 4xx and 5xx is JSON `{"error": {"code", "message", "details"}}`."""
    if response.status_code < 400:
        return None
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, "error body is not {'error': ...}"
    error = body["error"]
    assert isinstance(error, dict) and set(error) >= ERROR_KEYS, "error lacks code/message"
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    return True


@schemathesis.check
def invalid_data_rejected(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """schemathesis's own rejection check, also counting 413: a body over the hub's size limit
    is refused before its schema is even looked at."""
    if response.status_code == 413:
        return True
    result: bool | None = negative_data_rejection(ctx, response, case)
    return result


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    invalid_data_rejected,
    one_error_shape,
]


@dataclass
class Finding:
    operation: str
    report: str


def fuzz(
    app: Any,
    *,
    callers: Mapping[str, dict[str, str]],
    ids: Mapping[str, str],
    max_examples: int,
    seed: int | None = None,
    on_operation: Callable[[str], None] | None = None,
) -> list[Finding]:
    """Fuzz every operation of `app`; return what failed (nothing, when all is well).

    `callers` maps a role name to its request headers; `ids` gives real values for path
    parameters (an operation is fuzzed with them and with generated ones).
    """
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    findings: list[Finding] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            findings.append(Finding("(schema)", f"an operation could not be read: {result.err()}"))
            continue
        operation = result.ok()
        if on_operation is not None:
            on_operation(operation.label)
        names = {p.name for p in operation.path_parameters}
        known = {name: ids[name] for name in names if name in ids}
        strategies = [
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        ]
        if known:
            strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=known))

        @settings(
            max_examples=max_examples,
            deadline=None,
            database=None,
            derandomize=seed is None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=st.one_of(strategies), role=st.sampled_from(sorted(callers)))
        def call(case: Case[Any], role: str) -> None:
            case.call_and_validate(headers=callers[role], checks=CHECKS)

        try:
            call()
        except FailureGroup as exc:
            findings.append(Finding(operation.label, str(exc)))
    return findings
