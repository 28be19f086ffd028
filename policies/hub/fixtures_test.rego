# METADATA
# title: Fixtures of the policy tests
# description: >-
#   Inputs and checks shared by the *_test.rego files. The base input is allowed by
#   consent: police, designated by the panel, asks for identity and contact for a risk
#   assessment on a situation-table case at the assessment stage; the subject is an adult
#   who consented. Each test changes one thing.
package hub.fixtures_test

import data.hub.decision

# METADATA
# title: Now
# description: The decision time of every fixture.
now := "2026-11-28T12:00:00Z"

# METADATA
# title: One second before now
# description: For boundaries that must hold a second earlier.
second_ago := "2026-11-28T11:59:59Z"

# METADATA
# title: One second after now
# description: For boundaries that must not hold yet.
second_later := "2026-11-28T12:00:01Z"

# METADATA
# title: Consent fixture
# description: >-
#   An active, open-ended consent the subject gave for police and school, risk assessment
#   and intervention planning, identity and contact.
consent := {
	"id": "consent-1",
	"given_by": "subject",
	"explicit": false,
	"recipients": ["agency-police", "agency-school"],
	"purposes": ["risk_assessment", "intervention_planning"],
	"categories": ["identity", "contact"],
	"valid_from": "2026-01-01T00:00:00Z",
	"valid_until": null,
	"state": "active",
}

# METADATA
# title: Grant fixture
# description: An active public-task grant for police, risk assessment, education and social care.
grant := {
	"id": "grant-1",
	"agency": "agency-police",
	"purposes": ["risk_assessment"],
	"categories": ["education", "social_care"],
	"not_before": "2026-11-01T00:00:00Z",
	"expires_at": "2026-12-01T00:00:00Z",
	"state": "active",
	"legal_basis": "public_task",
}

# METADATA
# title: Base input
# description: Police, designated, asks for identity and contact for a risk assessment.
base := {
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
		"subject_is_minor": false,
		"subject_age": 30,
	},
	"request": {
		"purpose": "risk_assessment",
		"categories": ["identity", "contact"],
		"justification": "risk assessment for the panel meeting",
		"break_glass": false,
		"break_glass_since": null,
	},
	"consents": [consent],
	"grants": [],
	"now": now,
}

# METADATA
# title: Break-glass input
# description: >-
#   Police asks for identity under break-glass in a safeguarding emergency, with a
#   justification, no consent and no window open yet.
break_glass := object.union(base, {
	"request": {
		"purpose": "safeguarding_emergency",
		"categories": ["identity"],
		"justification": "credible threat to the child's life reported tonight",
		"break_glass": true,
		"break_glass_since": null,
	},
	"consents": [],
})

# METADATA
# title: Decide
# description: The decision on a document, for tests that check several in one go.
decide(document) := result if {
	result := decision.result with input as document
}

# METADATA
# title: Configuration with one value replaced
# description: >-
#   data.hub.config with the value at a JSON pointer replaced, for `with data.hub.config as`.
#   Replacing the whole configuration behaves the same in OPA and the embedded engine,
#   where `with` on a path inside it does not.
config_with(pointer, value) := json.patch(data.hub.config, [{"op": "add", "path": pointer, "value": value}])

# METADATA
# title: With
# description: The base input with a patch merged in (objects merge, other values replace).
with_patch(patch) := object.union(base, patch)

# METADATA
# title: Asking
# description: The base input asking for other categories.
asking(categories) := with_patch({"request": {"categories": categories}})

# METADATA
# title: Codes
# description: The set of reason codes of a result.
codes(result) := {reason.code | some reason in result.reasons}

# METADATA
# title: Denied with
# description: The result denies with exactly the given codes and grants nothing.
denied_with(result, expected) if {
	denied(result)
	codes(result) == expected
}

# METADATA
# title: Denied
# description: The result denies, grants nothing and gives at least one reason.
denied(result) if {
	result.allow == false
	result.permitted_categories == []
	result.legal_basis == null
	result.obligations == []
	count(result.reasons) > 0
}

# METADATA
# title: Allowed with
# description: The result allows the categories (sorted) under the legal basis.
allowed_with(result, basis, categories) if {
	result.allow == true
	result.legal_basis == basis
	result.permitted_categories == categories
	result.obligations == ["redact_third_parties"]
}
