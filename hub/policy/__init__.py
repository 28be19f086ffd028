"""The policy decision point: asks the Rego policies in ``policies/`` whether a disclosure may
happen, and reads their answer strictly.

Use :class:`EmbeddedPolicyEngine` (``from_policies()``) wherever a :class:`PolicyEngine` is
needed; any :class:`PolicyEngineError` from ``decide`` means deny.
"""

from __future__ import annotations

from hub.policy.engine import (
    EmbeddedPolicyEngine,
    PolicyEngine,
    PolicyEngineError,
)
from hub.policy.models import (
    CaseInput,
    ConsentInput,
    GrantInput,
    PolicyDecision,
    PolicyInput,
    Reason,
    RequesterInput,
    RequestInput,
)
from hub.policy.rego_tests import RegoTestResult, discover_rego_tests, run_rego_tests

__all__ = [
    "CaseInput",
    "ConsentInput",
    "EmbeddedPolicyEngine",
    "GrantInput",
    "PolicyDecision",
    "PolicyEngine",
    "PolicyEngineError",
    "PolicyInput",
    "Reason",
    "RegoTestResult",
    "RequestInput",
    "RequesterInput",
    "discover_rego_tests",
    "run_rego_tests",
]
