"""Policy inputs shared by the policy tests, as plain JSON documents.

`base_document()` is a request the shipped policy allows by consent: police on panel-1 asking
for identity and contact for a risk assessment. Tests change one thing with `merge()`.
"""

from __future__ import annotations

from typing import Any

NOW = "2026-11-28T12:00:00Z"

CONSENT: dict[str, Any] = {
    "id": "consent-1",
    "recipients": ["agency-police", "agency-school"],
    "purposes": ["risk_assessment", "intervention_planning"],
    "categories": ["identity", "contact"],
    "valid_from": "2026-01-01T00:00:00Z",
    "valid_until": None,
    "state": "active",
}

GRANT: dict[str, Any] = {
    "id": "grant-1",
    "agency": "agency-police",
    "purposes": ["risk_assessment"],
    "categories": ["education", "social_care"],
    "not_before": "2026-11-01T00:00:00Z",
    "expires_at": "2026-12-01T00:00:00Z",
    "state": "active",
    "legal_basis": "public_task",
}


def base_document() -> dict[str, Any]:
    """The allowed-by-consent input as a plain JSON document (fresh each call)."""
    return {
        "requester": {
            "agency": "agency-police",
            "agency_kind": "police",
            "client": "client-police",
            "user": "user-1",
            "roles": ["caseworker"],
            "panels": ["panel-1"],
        },
        "case": {
            "id": "case-1",
            "panel": "panel-1",
            "stage": "assessment",
            "lead_agency": "agency-social",
            "designated_agencies": ["agency-police"],
            "subject_is_minor": False,
        },
        "request": {
            "purpose": "risk_assessment",
            "categories": ["identity", "contact"],
            "justification": "risk assessment for the panel meeting",
            "break_glass": False,
        },
        "consents": [dict(CONSENT)],
        "grants": [],
        "now": NOW,
    }


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Like Rego's object.union: objects merge recursively, anything else replaces."""
    merged = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged
