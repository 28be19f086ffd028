"""The policy decision point: asks the Rego policies in ``policies/`` whether a disclosure may
happen, and reads their answer strictly.

Use :class:`EmbeddedPolicyEngine` (``from_policies()``) wherever a :class:`PolicyEngine` is
needed; any :class:`PolicyEngineError` from ``decide`` means deny.
"""

from __future__ import annotations

from hub.policy.bundle import BundleError, BundleInfo, build_bundle, verify_bundle
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
from hub.policy.remote import RemoteOpaPolicyEngine
from hub.policy.sources import PolicySet, PolicySourceError

__all__ = [
    "BundleError",
    "BundleInfo",
    "CaseInput",
    "ConsentInput",
    "EmbeddedPolicyEngine",
    "GrantInput",
    "PolicyDecision",
    "PolicyEngine",
    "PolicyEngineError",
    "PolicyInput",
    "PolicySet",
    "PolicySourceError",
    "Reason",
    "RegoTestResult",
    "RemoteOpaPolicyEngine",
    "RequestInput",
    "RequesterInput",
    "build_bundle",
    "discover_rego_tests",
    "run_rego_tests",
    "verify_bundle",
]
