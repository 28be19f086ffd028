"""The closed vocabularies the API accepts. They mirror the policy data
(`policies/hub/config/data.json`); a test keeps the two identical."""

from __future__ import annotations

from typing import Literal, get_args

Purpose = Literal[
    "screening",
    "risk_assessment",
    "intervention_planning",
    "safeguarding_emergency",
    "oversight",
    "statistics",
]
Category = Literal[
    "identity",
    "contact",
    "behavioural_indicators",
    "protective_factors",
    "education",
    "social_care",
    "police_contact",
    "health",
    "intervention_history",
]
Stage = Literal["referred", "screening", "signposted", "assessment", "intervention", "closed"]
AgencyKind = Literal["police", "social_services", "school", "health", "cso", "local_authority"]
Channel = Literal[
    "agency", "helpline", "web_form", "self_referral", "family_or_peer", "signposting"
]
# How a case ended: `signposted` at screening, the rest at `closed`.
Outcome = Literal[
    "signposted",
    "threshold_not_met",
    "intervention_completed",
    "risk_reduced",
    "consent_declined",
    "consent_withdrawn",
    "referred_elsewhere",
    "moved_away",
    "no_further_action",
]
ConsentGiver = Literal["subject", "parent", "guardian", "representative"]
GrantLegalBasis = Literal["public_task", "legal_obligation"]

PURPOSES: tuple[str, ...] = get_args(Purpose)
CATEGORIES: tuple[str, ...] = get_args(Category)
STAGES: tuple[str, ...] = get_args(Stage)

# Grounds a referral may never rest on; a referral naming them is refused, not stored.
REFUSED_GROUNDS = frozenset(
    {"religion", "ethnicity", "race", "political_opinion", "group_membership", "nationality"}
)

# Which stage may follow which. `signposted` and `closed` are ends.
TRANSITIONS: dict[str, frozenset[str]] = {
    "referred": frozenset({"screening", "closed"}),
    "screening": frozenset({"signposted", "assessment", "closed"}),
    "assessment": frozenset({"intervention", "closed"}),
    "intervention": frozenset({"closed"}),
    "signposted": frozenset(),
    "closed": frozenset(),
}
