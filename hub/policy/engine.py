"""The policy decision point: the interface the hub uses, and the embedded engine behind it.

Every failure to get a well-formed answer raises :class:`PolicyEngineError`; the hub turns that
into a deny with the reason ``policy_engine_error`` (fail closed).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, Self

import regorus
from pydantic import ValidationError
from pydantic_core import ErrorDetails

import policies
from hub.policy._worker import ThreadBound, ThreadBoundFailed
from hub.policy.models import PolicyDecision, PolicyInput

DECISION_RULE = "data.hub.decision.result"
"""The one document the hub evaluates."""

DEFAULT_TIMEOUT = 2.0
"""Seconds a decision may take before its answer is thrown away and it counts as failed."""

_UNDEFINED = '"<undefined>"'
# How regorus's VM writes an undefined result. It also answers this, rather than raising, where
# an evaluation error or a conflict between rule values leaves the document undefined.


class PolicyEngineError(Exception):
    """The policy engine gave no usable answer: treat the request as denied.

    The message names the failed check (load, timeout, undefined result, wrong shape), never
    anything from the input.
    """


class PolicyEngine(Protocol):
    """What the hub needs from a policy decision point (embedded engine or a remote OPA)."""

    @property
    def revision(self) -> str:
        """The revision of the policies and data that decide, for the audit log."""
        ...

    def decide(self, policy_input: PolicyInput) -> PolicyDecision:
        """Decide one request.

        Raises:
            PolicyEngineError: no well-formed decision could be had.
        """
        ...

    def close(self) -> None:
        """Release the engine; later calls to ``decide`` raise PolicyEngineError."""
        ...


def _compile(modules: Sequence[tuple[str, str]], data_json: str, rule: str) -> bytes:
    # The compiled program is thread-bound like everything regorus makes, so it is compiled
    # once here and kept as its serialised bytes, which any thread can load.
    program = regorus.Program.compile_from_modules(data_json, list(modules), [rule])
    binary: bytes = program.serialize_binary()
    return binary


class _ProgramLoader:
    """Makes one VM with the compiled program and data, on the thread that calls it."""

    def __init__(self, binary: bytes, data_json: str) -> None:
        self.binary = binary
        self.data_json = data_json

    def __call__(self) -> Any:
        program, _partial = regorus.Program.deserialize_binary(self.binary)
        vm = regorus.Rvm()
        vm.load_program(program)
        vm.set_data_json(self.data_json)
        return vm


def _execute(vm: Any, input_json: str) -> str:
    """One evaluation on the calling thread's VM: the result document as JSON text."""
    vm.set_input_json(input_json)
    result: str = vm.execute()
    return result


class EmbeddedPolicyEngine:
    """Evaluates the Rego policies in-process with regorus's compiled VM.

    The policies are compiled once, when the engine is made. regorus's objects are bound to
    the thread that made them (using one from another thread is a Rust panic), so each thread
    that calls ``decide()`` gets its own VM, loaded from the compiled program the first time
    it asks, and evaluates on it directly: no hand-off to another thread, whose wake-ups
    would cost more than the evaluation. Each VM is used and dropped only on its own thread
    (see :mod:`hub.policy._worker`). An evaluation cannot be interrupted; one that takes
    longer than ``timeout`` has its answer thrown away and fails closed.

    Use ``from_policies()`` for the shipped policies; the constructor takes any modules and
    data, which the tests use to inject a broken policy.
    """

    def __init__(
        self,
        *,
        modules: Sequence[tuple[str, str]],
        data: Mapping[str, Any],
        revision: str,
        rule: str = DECISION_RULE,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Compile and check the policies.

        Raises:
            ValueError: ``timeout`` is not a positive number of seconds.
            PolicyEngineError: the policies do not compile, or do not evaluate on an empty
                input to a deny.
        """
        if not (math.isfinite(timeout) and timeout > 0):
            raise ValueError("timeout must be a positive number of seconds")
        self.revision = revision
        self.timeout = timeout
        self._rule = rule
        modules = [(str(path), str(text)) for path, text in modules]
        try:
            data_json = json.dumps(data, allow_nan=False)
        except (TypeError, ValueError):
            raise PolicyEngineError("the policy data is not JSON-serialisable") from None
        try:
            binary = _compile(modules, data_json, rule)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            # A Rust panic arrives as a BaseException; its message may quote the policy.
            raise PolicyEngineError(f"the policies failed to load ({type(exc).__name__})") from None
        self._vms: ThreadBound[Any] = ThreadBound(_ProgramLoader(binary, data_json))
        try:
            self._check_startup()
        except PolicyEngineError:
            self.close()
            raise

    @classmethod
    def from_policies(cls, *, timeout: float = DEFAULT_TIMEOUT) -> Self:
        """An engine over the policies and data shipped in the ``policies`` package.

        Raises:
            ValueError: ``timeout`` is not a positive number of seconds.
            PolicyEngineError: the shipped policies cannot be read or do not load.
        """
        try:
            modules = policies.policy_modules()
            data = policies.policy_data()
            revision = policies.revision()
        except (OSError, UnicodeDecodeError, policies.PolicyDataError) as exc:
            raise PolicyEngineError(f"the shipped policies cannot be read: {exc}") from exc
        return cls(modules=modules, data=data, revision=revision, timeout=timeout)

    def decide(self, policy_input: PolicyInput) -> PolicyDecision:
        """Decide one request; safe to call from many threads at once.

        Raises:
            PolicyEngineError: the engine is closed, raised, took longer than ``timeout``,
                left the result undefined, or answered in the wrong shape.
        """
        return self._decide_json(policy_input.model_dump_json(), timeout=self.timeout)

    def decide_document(self, document: Mapping[str, Any]) -> PolicyDecision:
        """Decide on a raw input document, e.g. one replayed from the audit log.

        Nothing checks the document against :class:`PolicyInput`: the policy must deny
        whatever is missing or malformed in it.

        Raises:
            PolicyEngineError: as for ``decide``, or the document is not JSON-serialisable.
        """
        try:
            input_json = json.dumps(document, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            raise PolicyEngineError("the policy input is not JSON-serialisable") from None
        return self._decide_json(input_json, timeout=self.timeout)

    def close(self) -> None:
        """Refuse further decisions and let each thread drop its VM; safe to call twice."""
        self._vms.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _check_startup(self) -> None:
        # Evaluate once with an empty input, so that errors show when the engine starts, not
        # on the first real request, and a policy that allows an empty input is refused.
        if self._decide_json("{}", timeout=math.inf, what="startup check").allow:
            raise PolicyEngineError("the policy allows an empty input")

    def _decide_json(
        self, input_json: str, *, timeout: float, what: str = "evaluation"
    ) -> PolicyDecision:
        started = time.perf_counter()
        try:
            raw = self._vms.call(_execute, input_json)
        except ThreadBoundFailed as exc:
            if exc.closed:
                raise PolicyEngineError("the policy engine is closed") from None
            raise PolicyEngineError(f"policy {what} raised {exc.type_name}") from None
        if time.perf_counter() - started > timeout:
            raise PolicyEngineError(f"policy {what} took longer than {timeout} s")
        return self._to_decision(raw)

    def _to_decision(self, raw_json: str) -> PolicyDecision:
        if not isinstance(raw_json, str):
            raise PolicyEngineError(f"policy result {self._rule} is not JSON text")
        if raw_json == _UNDEFINED:
            raise PolicyEngineError(f"policy result {self._rule} is undefined")
        try:
            raw = json.loads(raw_json)
        except ValueError:
            raise PolicyEngineError(f"policy result {self._rule} is not valid JSON") from None
        if not isinstance(raw, dict):
            raise PolicyEngineError(
                f"policy result {self._rule} is a {type(raw).__name__}, not an object"
            )
        if "revision" in raw:
            raise PolicyEngineError("policy result must not set the revision")
        raw["revision"] = self.revision
        try:
            return PolicyDecision.model_validate(raw)
        except ValidationError as exc:
            # Name the fields and the rules they broke, never the values: a reason message in
            # the output could quote anything.
            problems = "; ".join(
                _describe(error) for error in exc.errors(include_input=False, include_url=False)
            )
            raise PolicyEngineError(
                f"policy result does not match the decision shape: {problems}"
            ) from None


def _describe(error: ErrorDetails) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "result"
    if error["type"] == "value_error":
        # Our own consistency checks in PolicyDecision; their messages hold no values.
        return f"{where}: {error['msg'].removeprefix('Value error, ')}"
    return f"{where}: {error['type']}"
