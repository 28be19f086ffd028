"""The policy decision point: the interface the hub uses, and the embedded engine behind it.

Every failure to get a well-formed answer raises :class:`PolicyEngineError`; the hub turns that
into a deny with the reason ``policy_engine_error`` (fail closed).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, Self

import regorus
from pydantic import ValidationError
from pydantic_core import ErrorDetails

import policies
from hub.policy._worker import OwnerThread, WorkerCallFailed, WorkerClosed
from hub.policy.models import PolicyDecision, PolicyInput

DECISION_RULE = "data.hub.decision.result"
"""The one document the hub evaluates."""

DEFAULT_TIMEOUT = 2.0
"""Seconds a decision may take, queueing included, before it counts as failed."""

_START_TIMEOUT = 30.0
"""Seconds loading and compiling the policies may take."""


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


def _load(modules: Sequence[tuple[str, str]], data: Mapping[str, Any]) -> regorus.Engine:
    engine = regorus.Engine()
    for path, text in modules:
        engine.add_policy(path, text)
    engine.add_data_json(json.dumps(data))
    return engine


class _Evaluate:
    """One evaluation, run on the engine's own thread."""

    def __init__(self, rule: str, input_json: str) -> None:
        self.rule = rule
        self.input_json = input_json

    def __call__(self, engine: regorus.Engine) -> Any:
        engine.set_input_json(self.input_json)
        return engine.eval_rule(self.rule)


class EmbeddedPolicyEngine:
    """Evaluates the Rego policies in-process with regorus.

    The regorus engine is bound to the thread that created it, so it lives on one dedicated
    worker thread: the policies are parsed and checked once there, and each ``decide()``, from
    any thread, queues one evaluation on it and waits at most ``timeout`` seconds. The worker
    runs one evaluation at a time (about a tenth of a millisecond each), which is simpler and
    safer than a pool of engines and fast enough for a hub.

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
        """Load and check the policies on a new worker thread.

        Raises:
            ValueError: ``timeout`` is not a positive number of seconds.
            PolicyEngineError: the policies do not load, or do not evaluate on an empty input.
        """
        if not (math.isfinite(timeout) and timeout > 0):
            raise ValueError("timeout must be a positive number of seconds")
        self.revision = revision
        self.timeout = timeout
        self._rule = rule
        modules = [(path, text) for path, text in modules]
        data = json.loads(json.dumps(data))
        try:
            self._worker: OwnerThread[regorus.Engine] = OwnerThread(
                lambda: _load(modules, data), name="regorus-policy", start_timeout=_START_TIMEOUT
            )
        except WorkerCallFailed as exc:
            raise PolicyEngineError(f"the policies failed to load ({exc.type_name})") from None
        except TimeoutError:
            raise PolicyEngineError("the policies took too long to load") from None
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
        return self.decide_document(policy_input.to_json_dict())

    def decide_document(self, document: Mapping[str, Any]) -> PolicyDecision:
        """Decide on a raw input document, e.g. one replayed from the audit log.

        Nothing checks the document against :class:`PolicyInput`: the policy must deny
        whatever is missing or malformed in it.

        Raises:
            PolicyEngineError: as for ``decide``, or the document is not JSON-serialisable.
        """
        try:
            input_json = json.dumps(document, allow_nan=False)
        except (TypeError, ValueError):
            raise PolicyEngineError("the policy input is not JSON-serialisable") from None
        raw = self._call(_Evaluate(self._rule, input_json), timeout=self.timeout, what="evaluation")
        return self._to_decision(raw)

    def close(self) -> None:
        """Stop the worker thread once queued decisions finish; safe to call twice."""
        self._worker.close(timeout=self.timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _check_startup(self) -> None:
        # regorus resolves rules lazily, so evaluate once with an empty input: errors in the
        # policies then show when the engine starts, not on the first real request, and a
        # policy that allows an empty input is refused outright.
        raw = self._call(_Evaluate(self._rule, "{}"), timeout=_START_TIMEOUT, what="startup check")
        if self._to_decision(raw).allow:
            raise PolicyEngineError("the policy allows an empty input")

    def _call(self, call: _Evaluate, *, timeout: float, what: str) -> Any:
        try:
            future = self._worker.submit(call)
        except WorkerClosed:
            raise PolicyEngineError("the policy engine is closed") from None
        try:
            return future.result(timeout=timeout)
        except TimeoutError:
            # The worker cannot interrupt an evaluation that has started; cancel() at least
            # drops this one if it is still queued, so a backlog does not grow.
            future.cancel()
            raise PolicyEngineError(f"policy {what} took longer than {timeout} s") from None
        except WorkerCallFailed as exc:
            raise PolicyEngineError(f"policy {what} raised {exc.type_name}") from None

    def _to_decision(self, raw: Any) -> PolicyDecision:
        if raw is None:
            raise PolicyEngineError(f"policy result {self._rule} is undefined")
        if not isinstance(raw, dict):
            raise PolicyEngineError(
                f"policy result {self._rule} is a {type(raw).__name__}, not an object"
            )
        if "revision" in raw:
            raise PolicyEngineError("policy result must not set the revision")
        try:
            return PolicyDecision.model_validate({**raw, "revision": self.revision})
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
