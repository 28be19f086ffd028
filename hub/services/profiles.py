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
