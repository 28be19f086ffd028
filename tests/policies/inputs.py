"""Policy inputs shared by the policy tests and the benchmark, as plain JSON documents.

`base_document()` is a request the shipped policy allows by consent: police, designated by a
situation table's panel, asking for identity and contact for a risk assessment at the
assessment stage; the subject is an adult who consented. Tests change one thing with
`merge()`. `VARIED` holds named documents that between them reach every reason code, every
profile and every stage; their names start with `allow-` or `deny-`.
"""

from __future__ import annotations

import copy
from typing import Any

NOW = "2026-11-28T12:00:00Z"
SECOND_AGO = "2026-11-28T11:59:59Z"
SECOND_LATER = "2026-11-28T12:00:01Z"

CONSENT: dict[str, Any] = {
    "id": "consent-1",
    "given_by": "subject",
    "explicit": False,
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

PROFILES = ("situation_table", "channel_panel", "safety_house")
STAGES = ("referred", "screening", "assessment", "intervention", "signposted", "closed")


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
            "profile": "situation_table",
            "stage": "assessment",
            "lead_agency": "agency-social",
            "designated_agencies": ["agency-police"],
            "subject_is_minor": False,
            "subject_age": 30,
        },
        "request": {
            "purpose": "risk_assessment",
            "categories": ["identity", "contact"],
            "justification": "risk assessment for the panel meeting",
            "break_glass": False,
            "break_glass_since": None,
        },
        "consents": [copy.deepcopy(CONSENT)],
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


def doc(patch: dict[str, Any] | None = None) -> dict[str, Any]:
    """The base document with a patch merged in."""
    return merge(base_document(), patch or {})


def without(document: dict[str, Any], *path: str) -> dict[str, Any]:
    """The document with the key at `path` removed (the document is changed and returned)."""
    node = document
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return document


BREAK_GLASS: dict[str, Any] = {
    "request": {
        "purpose": "safeguarding_emergency",
        "categories": ["identity"],
        "justification": "credible threat to the child's life reported tonight",
        "break_glass": True,
        "break_glass_since": None,
    },
    "consents": [],
}

SCHOOL: dict[str, Any] = {
    "requester": {"agency": "agency-school", "agency_kind": "school", "client": "client-school"}
}

SUMMARY: dict[str, Any] = {
    "request": {
        "purpose": "screening",
        "categories": ["behavioural_indicators", "protective_factors"],
    },
    "consents": [],
}


def _at(profile: str, stage: str, patch: dict[str, Any] | None = None) -> dict[str, Any]:
    return merge(doc({"case": {"profile": profile, "stage": stage}}), patch or {})


def _walk() -> dict[str, dict[str, Any]]:
    """Every profile at every stage: the summary, identity, and the intervention's data."""
    walk: dict[str, dict[str, Any]] = {}
    for profile in PROFILES:
        for stage in STAGES:
            summary = _at(profile, stage, merge(SCHOOL, SUMMARY))
            identity = _at(profile, stage)
            intervention = _at(
                profile,
                stage,
                {
                    "requester": {"agency": "agency-social"},
                    "request": {"purpose": "intervention_planning", "categories": ["education"]},
                    "consents": [],
                    "grants": [
                        merge(
                            GRANT,
                            {"agency": "agency-social", "purposes": ["intervention_planning"]},
                        )
                    ],
                },
            )
            for what, document in (
                ("summary", summary),
                ("identity", identity),
                ("intervention", intervention),
            ):
                walk[f"{profile}-{stage}-{what}"] = document
    return walk


# Which of the walk's documents the shipped policy allows; the rest it denies.
_WALK_ALLOWED = {
    f"{profile}-{stage}-summary"
    for profile in PROFILES
    for stage in ("referred", "screening", "assessment")
} | {
    *(
        f"{profile}-{stage}-identity"
        for profile in PROFILES
        for stage in ("assessment", "intervention")
    ),
    *(f"{profile}-intervention-intervention" for profile in PROFILES),
}


def _named_walk() -> dict[str, dict[str, Any]]:
    return {
        ("allow-" if name in _WALK_ALLOWED else "deny-") + "walk-" + name: document
        for name, document in _walk().items()
    }


VARIED: dict[str, dict[str, Any]] = {
    # ----------------------------------------------------------------- allow
    "allow-consent": doc(),
    "allow-grant": doc(
        {"request": {"categories": ["education", "social_care"]}, "consents": [], "grants": [GRANT]}
    ),
    "allow-consent-preferred-over-grant": doc(
        {"grants": [merge(GRANT, {"categories": ["identity", "contact"]})]}
    ),
    "allow-legal-obligation-over-public-task": doc(
        {
            "request": {"categories": ["education"]},
            "consents": [],
            "grants": [GRANT, merge(GRANT, {"id": "grant-0", "legal_basis": "legal_obligation"})],
        }
    ),
    "allow-profile-public-task": doc(
        merge(
            SUMMARY,
            {"case": {"stage": "referred"}, "request": {"categories": ["protective_factors"]}},
        )
    ),
    "allow-channel-legal-obligation": doc(
        merge(SUMMARY, {"case": {"profile": "channel_panel", "stage": "screening"}})
    ),
    "allow-safety-house-covenant": doc({"case": {"profile": "safety_house"}, "consents": []}),
    "allow-duplicate-categories": doc({"request": {"categories": ["identity", "identity"]}}),
    "allow-offset-times": doc(
        {
            "now": "2026-11-28T13:00:00+01:00",
            "consents": [merge(CONSENT, {"valid_until": "2026-11-28T13:00:00.000001+01:00"})],
        }
    ),
    "allow-consent-ending-in-a-second": doc(
        {"consents": [merge(CONSENT, {"valid_until": SECOND_LATER})]}
    ),
    "allow-grant-a-second-before-expiry": doc(
        {
            "request": {"categories": ["education"]},
            "consents": [],
            "grants": [merge(GRANT, {"expires_at": SECOND_LATER})],
        }
    ),
    "allow-minor-at-age-of-consent": doc({"case": {"subject_age": 16, "subject_is_minor": True}}),
    "allow-minor-parent-consent": doc(
        {
            "case": {"subject_age": 15, "subject_is_minor": True},
            "consents": [merge(CONSENT, {"given_by": "parent"})],
        }
    ),
    "allow-health-explicit-consent": doc(
        {
            "case": {"stage": "intervention"},
            "request": {"purpose": "intervention_planning", "categories": ["health"]},
            "consents": [merge(CONSENT, {"categories": ["health"], "explicit": True})],
        }
    ),
    "allow-lead-at-intervention": doc(
        {
            "requester": {"agency": "agency-social"},
            "case": {"stage": "intervention", "designated_agencies": []},
            "request": {"purpose": "intervention_planning"},
            "consents": [merge(CONSENT, {"recipients": ["agency-social"]})],
        }
    ),
    "allow-break-glass": doc(BREAK_GLASS),
    "allow-break-glass-undesignated-at-referred": doc(
        merge(
            merge(BREAK_GLASS, SCHOOL),
            {
                "case": {"stage": "referred", "designated_agencies": []},
                "request": {"categories": ["identity", "contact", "health"]},
            },
        )
    ),
    "allow-break-glass-72h-minus-a-second": doc(
        merge(BREAK_GLASS, {"request": {"break_glass_since": "2026-11-25T12:00:01Z"}})
    ),
    # ----------------------------------------------------------------- deny
    "deny-other-panel": doc({"requester": {"panels": ["panel-2", "panel-3"]}}),
    "deny-unknown-profile": doc({"case": {"profile": "secret-profile"}}),
    "deny-unknown-purpose": doc({"request": {"purpose": "curiosity"}}),
    "deny-purpose-at-stage": doc(
        {
            "case": {"stage": "screening"},
            "request": {"categories": ["behavioural_indicators"]},
            "consents": [merge(CONSENT, {"categories": ["behavioural_indicators"]})],
        }
    ),
    "deny-unknown-stage": doc({"case": {"stage": "archived"}}),
    "deny-closed": doc({"case": {"stage": "closed"}}),
    "deny-unknown-category": doc({"request": {"categories": ["shoe_size", "identity"]}}),
    "deny-refused-categories": doc({"request": {"categories": ["religion", "ethnicity"]}}),
    "deny-category-for-purpose": doc(
        {
            "request": {"categories": ["identity", "health"]},
            "consents": [merge(CONSENT, {"categories": ["identity", "health"], "explicit": True})],
        }
    ),
    "deny-no-categories": doc({"request": {"categories": []}}),
    "deny-identity-before-assessment": doc(
        {"case": {"stage": "screening"}, "request": {"purpose": "screening"}}
    ),
    "deny-not-designated": doc(SCHOOL),
    "deny-not-lead-or-assisting": doc(
        merge(
            SCHOOL,
            {"case": {"stage": "intervention"}, "request": {"purpose": "intervention_planning"}},
        )
    ),
    "deny-withdrawn-consent": doc({"consents": [merge(CONSENT, {"state": "withdrawn"})]}),
    "deny-consent-ended-a-second-ago": doc(
        {"consents": [merge(CONSENT, {"valid_until": SECOND_AGO})]}
    ),
    "deny-grant-at-expiry": doc(
        {
            "request": {"categories": ["education"]},
            "consents": [],
            "grants": [merge(GRANT, {"expires_at": NOW})],
        }
    ),
    "deny-mixed-legal-basis": doc(
        {"request": {"categories": ["identity", "education"]}, "grants": [GRANT]}
    ),
    "deny-health-not-explicit": doc(
        {
            "case": {"stage": "intervention"},
            "request": {"purpose": "intervention_planning", "categories": ["health"]},
            "consents": [merge(CONSENT, {"categories": ["health"]})],
        }
    ),
    "deny-minor-own-consent": doc({"case": {"subject_age": 15, "subject_is_minor": True}}),
    "deny-unknown-age": doc({"case": {"subject_age": None, "subject_is_minor": True}}),
    "deny-channel-seventeen": doc(
        {"case": {"profile": "channel_panel", "subject_age": 17, "subject_is_minor": True}}
    ),
    "deny-break-glass-wrong-purpose": doc(
        merge(BREAK_GLASS, {"request": {"purpose": "risk_assessment"}})
    ),
    "deny-break-glass-short-justification": doc(
        merge(BREAK_GLASS, {"request": {"justification": "child at risk now!!"}})
    ),
    "deny-break-glass-category": doc(
        merge(BREAK_GLASS, {"request": {"categories": ["identity", "police_contact"]}})
    ),
    "deny-break-glass-at-72h": doc(
        merge(BREAK_GLASS, {"request": {"break_glass_since": "2026-11-25T12:00:00Z"}})
    ),
    "deny-break-glass-closed": doc(merge(BREAK_GLASS, {"case": {"stage": "closed"}})),
    "deny-safeguarding-without-break-glass": doc(
        merge(BREAK_GLASS, {"request": {"break_glass": False}})
    ),
    "deny-health-not-released-at-assessment": doc(
        {
            "request": {"purpose": "safeguarding_emergency", "categories": ["health"]},
            "consents": [
                merge(
                    CONSENT,
                    {
                        "purposes": ["safeguarding_emergency"],
                        "categories": ["health"],
                        "explicit": True,
                    },
                )
            ],
        }
    ),
    "deny-many-reasons": doc(
        {
            "requester": {"panels": []},
            "case": {"stage": "intervention"},
            "request": {"purpose": "screening", "categories": ["health", "nonsense", "identity"]},
            "consents": [],
        }
    ),
    "deny-missing-case-panel": without(doc(), "case", "panel"),
    "deny-missing-agency": without(doc(), "requester", "agency"),
    "deny-missing-break-glass-flag": without(doc(), "request", "break_glass"),
    "deny-missing-valid-until": doc(
        {"consents": [{k: v for k, v in CONSENT.items() if k != "valid_until"}]}
    ),
    "deny-missing-profile": without(doc(), "case", "profile"),
    "deny-empty": {},
    **_named_walk(),
}
"""Named documents reaching every reason code, profile and stage (see the module docstring)."""
