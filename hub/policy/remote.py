"""A policy engine that asks an OPA server through OPA's REST Data API.

Each decision is one request::

    POST {base_url}/v1/data/hub/decision/result    {"input": <the policy input>}
    200 {"result": <the decision>, "decision_id": "..."}    (no "result": undefined)

The answer is read as strictly as the embedded engine reads its own (the same checks, from
:mod:`hub.policy.engine`), and every failure raises :class:`PolicyEngineError`, which the hub
turns into a deny (fail closed).

OPA's ``decision_id`` (present when OPA's decision logs are on) is not returned: the
:class:`PolicyEngine` interface gives a :class:`PolicyDecision` only, and correlating the hub's
audit log with OPA's decision log goes by time and revision until the decision model carries it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Self
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

import policies
from hub.policy.engine import DECISION_RULE, PolicyEngineError, _describe
from hub.policy.models import PolicyDecision, PolicyInput

DEFAULT_TIMEOUT = 0.5
"""Seconds each attempt may spend connecting, sending or waiting for the answer."""

_ATTEMPTS = 2
"""One try and exactly one retry, on a transport error, a timeout or a 5xx answer."""

_DATA_PATH = "/v1/data/" + DECISION_RULE.removeprefix("data.").replace(".", "/")


class RemoteOpaPolicyEngine:
    """Asks an OPA server for each decision; safe to call from many threads at once.

    One ``httpx.Client`` (thread-safe, with a connection pool) serves every call. Proxy settings
    from the environment are ignored: the hub talks to its OPA directly.

    ``revision`` is the revision of the policies the hub deployed to that OPA (by default the
    shipped policies' revision); the audit log records it. OPA's own view of its revision is not
    checked on each call.
    """

    def __init__(
        self,
        base_url: str,
        *,
        revision: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        token: str | None = None,
    ) -> None:
        """Prepare the client; nothing is sent until the first decision.

        ``token``, if given, is sent as ``Authorization: Bearer <token>`` (OPA's
        ``--authentication=token``).

        Raises:
            ValueError: ``base_url`` is not an http(s) URL without query or fragment,
                ``timeout`` is not a positive number of seconds, or ``token`` is empty or
                holds a line break.
            PolicyEngineError: no ``revision`` was given and the shipped policies cannot be read.
        """
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the OPA URL must be an http or https URL with a host")
        if parts.query or parts.fragment:
            raise ValueError("the OPA URL must not have a query or fragment")
        if not (math.isfinite(timeout) and timeout > 0):
            raise ValueError("timeout must be a positive number of seconds")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token is not None:
            if not token or "\r" in token or "\n" in token:
                raise ValueError("the OPA token must be a non-empty single line")
            headers["Authorization"] = f"Bearer {token}"
        if revision is None:
            try:
                revision = policies.revision()
            except OSError as exc:
                raise PolicyEngineError(f"the shipped policies cannot be read: {exc}") from exc
        self._revision = revision
        self.timeout = timeout
        self._closed = False
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            trust_env=False,
        )

    @classmethod
    def from_url(
        cls, url: str, *, timeout: float = DEFAULT_TIMEOUT, token: str | None = None
    ) -> Self:
        """An engine for the OPA server at ``url`` that decides with the shipped policies.

        Raises:
            ValueError: as for the constructor.
            PolicyEngineError: the shipped policies cannot be read for their revision.
        """
        return cls(url, timeout=timeout, token=token)

    @property
    def revision(self) -> str:
        """The revision of the policies the hub deployed to OPA, for the audit log."""
        return self._revision

    def decide(self, policy_input: PolicyInput) -> PolicyDecision:
        """Decide one request by asking OPA.

        Raises:
            PolicyEngineError: the engine is closed; OPA could not be reached, timed out or
                answered 5xx on both attempts; answered another status than 200, or not a JSON
                object; left the result undefined; or answered in the wrong shape.
        """
        return self.decide_document(policy_input.to_json_dict())

    def decide_document(self, document: Mapping[str, Any]) -> PolicyDecision:
        """Decide on a raw input document, e.g. one replayed from the audit log.

        Raises:
            PolicyEngineError: as for ``decide``, or the document is not JSON-serialisable.
        """
        try:
            body = json.dumps({"input": document}, allow_nan=False).encode("utf-8")
        except (TypeError, ValueError):
            raise PolicyEngineError("the policy input is not JSON-serialisable") from None
        return _read_decision(_result(self._post(body)), revision=self._revision)

    def close(self) -> None:
        """Close the connections; later decisions raise PolicyEngineError. Safe to call twice."""
        self._closed = True
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _post(self, body: bytes) -> httpx.Response:
        failure = ""
        for _attempt in range(_ATTEMPTS):
            if self._closed:
                raise PolicyEngineError("the policy engine is closed")
            try:
                response = self._client.post(_DATA_PATH, content=body)
            except httpx.TimeoutException:
                failure = f"OPA did not answer within {self.timeout} s"
                continue
            except httpx.TransportError as exc:
                failure = f"OPA could not be reached ({type(exc).__name__})"
                continue
            except httpx.HTTPError as exc:
                raise PolicyEngineError(
                    f"OPA's answer could not be read ({type(exc).__name__})"
                ) from None
            except RuntimeError:
                # httpx raises this once the client is closed.
                raise PolicyEngineError("the policy engine is closed") from None
            if response.status_code < 500:
                return response
            failure = f"OPA answered HTTP {response.status_code}"
        raise PolicyEngineError(f"{failure} ({_ATTEMPTS} attempts)")


def _result(response: httpx.Response) -> Any:
    if response.status_code != 200:
        raise PolicyEngineError(f"OPA answered HTTP {response.status_code}")
    try:
        answer = response.json()
    except ValueError:
        raise PolicyEngineError("OPA's answer is not JSON") from None
    if not isinstance(answer, dict):
        raise PolicyEngineError("OPA's answer is not a JSON object")
    if "result" not in answer:
        raise PolicyEngineError(f"policy result {DECISION_RULE} is undefined")
    return answer["result"]


def _read_decision(raw: Any, *, revision: str) -> PolicyDecision:
    # The same checks as EmbeddedPolicyEngine._to_decision, with its error descriptions.
    if raw is None:
        raise PolicyEngineError(f"policy result {DECISION_RULE} is undefined")
    if not isinstance(raw, dict):
        raise PolicyEngineError(
            f"policy result {DECISION_RULE} is a {type(raw).__name__}, not an object"
        )
    if "revision" in raw:
        raise PolicyEngineError("policy result must not set the revision")
    try:
        return PolicyDecision.model_validate({**raw, "revision": revision})
    except ValidationError as exc:
        problems = "; ".join(
            _describe(error) for error in exc.errors(include_input=False, include_url=False)
        )
        raise PolicyEngineError(
            f"policy result does not match the decision shape: {problems}"
        ) from None
