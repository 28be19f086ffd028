"""Panel profiles, read from the same policy data the Rego rules use."""

from __future__ import annotations

from functools import cache
from typing import Any

import policies

# Used only if a profile names no age of consent: the safer, higher age.
DEFAULT_AGE_OF_CONSENT = 18


@cache
def _profiles() -> dict[str, Any]:
    config = policies.policy_data().get("hub", {}).get("config", {})
    found = config.get("profiles", {})
    return dict(found) if isinstance(found, dict) else {}


def names() -> set[str]:
    return set(_profiles())


def age_of_consent(profile: str) -> int:
    """The age from which a subject consents alone under this profile."""
    value = _profiles().get(profile, {}).get("age_of_consent")
    return value if isinstance(value, int) else DEFAULT_AGE_OF_CONSENT


# Used only where a profile's `workflow` section names no value.
DEFAULT_MAX_GRANT_DAYS = 90
DEFAULT_MAX_CONCURRENT_INTERVENTIONS = 1
DEFAULT_RETENTION_DAYS = 730


def _workflow(profile: str) -> dict[str, Any]:
    found = _profiles().get(profile, {}).get("workflow", {})
    return dict(found) if isinstance(found, dict) else {}


def _positive_int(profile: str, key: str, default: int) -> int:
    value = _workflow(profile).get(key)
    return value if isinstance(value, int) and value > 0 else default


def max_grant_days(profile: str) -> int:
    """The longest a grant may last under this profile (never more than the hub's ceiling)."""
    return min(_positive_int(profile, "max_grant_days", DEFAULT_MAX_GRANT_DAYS), 90)


def max_concurrent_interventions(profile: str) -> int:
    return _positive_int(
        profile, "max_concurrent_interventions", DEFAULT_MAX_CONCURRENT_INTERVENTIONS
    )


def retention_days(profile: str) -> int:
    """How long a closed case is kept before `hub retention run` purges it."""
    return _positive_int(profile, "retention_days", DEFAULT_RETENTION_DAYS)


def indicators(profile: str) -> frozenset[str]:
    """The behavioural indicators a referral or an assessment may name."""
    return frozenset(str(code) for code in _workflow(profile).get("indicators", []))


def protective_factors(profile: str) -> frozenset[str]:
    return frozenset(str(code) for code in _workflow(profile).get("protective_factors", []))


def screening_checklist(profile: str) -> tuple[str, ...]:
    """The ids of the eligibility questions a screening answers, in order."""
    items = _workflow(profile).get("screening_checklist", [])
    return tuple(str(item["id"]) for item in items if isinstance(item, dict) and "id" in item)


def threshold_dimensions(profile: str) -> tuple[str, ...]:
    threshold = _profiles().get(profile, {}).get("threshold", {})
    dims = threshold.get("dimensions", []) if isinstance(threshold, dict) else []
    return tuple(str(d) for d in dims)


def break_glass_hours(profile: str) -> int:
    """How long a break-glass window lasts under this profile (the policy enforces it)."""
    found = _profiles().get(profile, {}).get("break_glass", {})
    value = found.get("max_hours") if isinstance(found, dict) else None
    return value if isinstance(value, int) else 72


def threshold_name(profile: str) -> str:
    threshold = _profiles().get(profile, {}).get("threshold", {})
    return str(threshold.get("name", "")) if isinstance(threshold, dict) else ""
