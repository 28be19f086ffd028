# METADATA
# title: Tests of the disclosure decision
# description: >-
#   One test per allow path and per deny reason. Each test starts from a request that is
#   allowed by consent and changes one thing.
package hub.decision_test

import data.hub.decision

# ---------------------------------------------------------------------------------------
# Fixtures

# METADATA
# title: Now
# description: The decision time of every fixture.
now := "2026-11-28T12:00:00Z"

# METADATA
# title: Consent fixture
# description: An active, open-ended consent for police, risk assessment, identity and contact.
consent := {
	"id": "consent-1",
	"recipients": ["agency-police", "agency-school"],
	"purposes": ["risk_assessment", "intervention_planning"],
	"categories": ["identity", "contact"],
	"valid_from": "2026-01-01T00:00:00Z",
	"valid_until": null,
	"state": "active",
}

# METADATA
# title: Grant fixture
# description: An active grant for police, risk assessment, education and social care.
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
# description: Police on panel-1 asks for identity and contact for a risk assessment.
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
		"stage": "assessment",
		"lead_agency": "agency-social",
		"designated_agencies": ["agency-police"],
		"subject_is_minor": false,
	},
	"request": {
		"purpose": "risk_assessment",
		"categories": ["identity", "contact"],
		"justification": "risk assessment for the panel meeting",
		"break_glass": false,
	},
	"consents": [consent],
	"grants": [],
	"now": now,
}

# METADATA
# title: With
# description: The base input with a patch merged in (objects merge, other values replace).
with_patch(patch) := object.union(base, patch)

# METADATA
# title: Request categories
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
	result.allow == false
	result.permitted_categories == []
	result.legal_basis == null
	result.obligations == []
	codes(result) == expected
}

# ---------------------------------------------------------------------------------------
# Allow paths

# METADATA
# title: Allow with consent
test_allow_with_consent if {
	result := decision.result with input as base
	result.allow == true
	result.permitted_categories == ["contact", "identity"]
	result.legal_basis == "consent"
	result.obligations == ["redact_third_parties"]
	result.reasons == [
		{"code": "covered_by_consent", "message": "consent consent-1 covers category contact"},
		{"code": "covered_by_consent", "message": "consent consent-1 covers category identity"},
	]
}

# METADATA
# title: Allow with a grant
test_allow_with_grant if {
	result := decision.result with input as object.union(
		asking(["education", "social_care"]),
		{"consents": [], "grants": [grant]},
	)
	result.allow == true
	result.permitted_categories == ["education", "social_care"]
	result.legal_basis == "public_task"
	result.obligations == ["redact_third_parties"]
	result.reasons == [
		{"code": "covered_by_grant", "message": "grant grant-1 covers category education under public_task"},
		{"code": "covered_by_grant", "message": "grant grant-1 covers category social_care under public_task"},
	]
}

# METADATA
# title: Allow with consent and a grant together
test_allow_with_consent_and_grant if {
	result := decision.result with input as object.union(
		asking(["identity", "education"]),
		{"grants": [grant]},
	)
	result.allow == true
	result.permitted_categories == ["education", "identity"]
	result.legal_basis == "public_task"
	codes(result) == {"covered_by_consent", "covered_by_grant"}
}

# METADATA
# title: Consent wins when it covers everything
test_allow_consent_preferred_over_grant if {
	both := object.union(grant, {"categories": ["identity", "contact"]})
	result := decision.result with input as with_patch({"grants": [both]})
	result.allow == true
	result.legal_basis == "consent"
	codes(result) == {"covered_by_consent"}
}

# METADATA
# title: Allow with a consent that has an end in the future
test_allow_consent_with_end if {
	ending := object.union(consent, {"valid_until": "2026-11-28T12:00:01Z"})
	result := decision.result with input as with_patch({"consents": [ending]})
	result.allow == true
}

# METADATA
# title: Allow with a consent that starts exactly now
test_allow_consent_starting_now if {
	starting := object.union(consent, {"valid_from": now})
	result := decision.result with input as with_patch({"consents": [starting]})
	result.allow == true
}

# METADATA
# title: Allow with a grant that starts exactly now
test_allow_grant_starting_now if {
	starting := object.union(grant, {"not_before": now})
	result := decision.result with input as object.union(
		asking(["education"]),
		{"consents": [], "grants": [starting]},
	)
	result.allow == true
}

# METADATA
# title: Duplicate categories count once
test_allow_duplicate_categories if {
	result := decision.result with input as asking(["identity", "identity"])
	result.allow == true
	result.permitted_categories == ["identity"]
}

# METADATA
# title: Two grant bases that each cover everything pick the first sorted
test_allow_two_grant_bases_pick_first_sorted if {
	other := object.union(grant, {"id": "grant-2", "legal_basis": "legal_obligation"})
	result := decision.result with input as object.union(
		asking(["education"]),
		{"consents": [], "grants": [grant, other]},
	)
	result.allow == true
	result.legal_basis == "legal_obligation"
	result.reasons == [{
		"code": "covered_by_grant",
		"message": "grant grant-2 covers category education under legal_obligation",
	}]
}

# METADATA
# title: Screening at the referred stage
test_allow_screening_when_referred if {
	screening_consent := object.union(consent, {
		"purposes": ["screening"],
		"categories": ["behavioural_indicators"],
	})
	result := decision.result with input as object.union(base, {
		"case": {"stage": "referred"},
		"request": {"purpose": "screening", "categories": ["behavioural_indicators"]},
		"consents": [screening_consent],
	})
	result.allow == true
	result.permitted_categories == ["behavioural_indicators"]
}

# ---------------------------------------------------------------------------------------
# Deny: membership

# METADATA
# title: Deny an agency of another panel
test_deny_not_panel_member if {
	result := decision.result with input as with_patch({"requester": {"panels": ["panel-2"]}})
	denied_with(result, {"not_panel_member"})
}

# METADATA
# title: Deny when the requester's panels are missing
test_deny_missing_panels if {
	patched := json.remove(base, ["requester/panels"])
	result := decision.result with input as patched
	denied_with(result, {"not_panel_member"})
}

# METADATA
# title: Deny when the case's panel is missing
test_deny_missing_case_panel if {
	patched := json.remove(base, ["case/panel"])
	result := decision.result with input as patched
	denied_with(result, {"not_panel_member"})
}

# ---------------------------------------------------------------------------------------
# Deny: purpose

# METADATA
# title: Deny an unknown purpose
test_deny_unknown_purpose if {
	result := decision.result with input as with_patch({"request": {"purpose": "curiosity"}})
	denied_with(result, {"unknown_purpose", "category_not_covered"})
}

# METADATA
# title: Deny a purpose the stage does not allow
test_deny_purpose_not_allowed_at_stage if {
	result := decision.result with input as with_patch({"case": {"stage": "screening"}})
	denied_with(result, {"purpose_not_allowed_at_stage"})
	result.reasons == [{
		"code": "purpose_not_allowed_at_stage",
		"message": "purpose risk_assessment is not allowed at case stage screening; allowed there: screening",
	}]
}

# METADATA
# title: Deny every purpose on a closed case
test_deny_closed_case if {
	result := decision.result with input as with_patch({"case": {"stage": "closed"}})
	denied_with(result, {"purpose_not_allowed_at_stage"})
	result.reasons[0].message == "purpose risk_assessment is not allowed at case stage closed; allowed there: none"
}

# METADATA
# title: Deny on an unknown stage
test_deny_unknown_stage if {
	result := decision.result with input as with_patch({"case": {"stage": "archived"}})
	denied_with(result, {"purpose_not_allowed_at_stage"})
}

# ---------------------------------------------------------------------------------------
# Deny: categories

# METADATA
# title: Deny a request without categories
test_deny_no_categories if {
	result := decision.result with input as asking([])
	denied_with(result, {"no_categories"})
}

# METADATA
# title: Deny a request whose categories are missing
test_deny_missing_categories if {
	result := decision.result with input as json.remove(base, ["request/categories"])
	denied_with(result, {"no_categories"})
}

# METADATA
# title: Deny an unknown category, without echoing it
test_deny_unknown_category if {
	result := decision.result with input as asking(["identity", "religion"])
	denied_with(result, {"unknown_category"})
	not contains(result.reasons[0].message, "religion")
}

# METADATA
# title: Deny a category the purpose does not allow
test_deny_category_not_allowed_for_purpose if {
	health_consent := object.union(consent, {"categories": ["identity", "health"]})
	result := decision.result with input as object.union(
		asking(["identity", "health"]),
		{"consents": [health_consent]},
	)
	denied_with(result, {"category_not_allowed_for_purpose"})
	result.reasons[0].message == "category health is not allowed for purpose risk_assessment"
}

# ---------------------------------------------------------------------------------------
# Deny: coverage

# METADATA
# title: Deny without consents or grants
test_deny_no_consent_no_grant if {
	result := decision.result with input as with_patch({"consents": []})
	denied_with(result, {"category_not_covered"})
	count(result.reasons) == 2
}

# METADATA
# title: The uncovered reason names the category
test_deny_not_covered_names_category if {
	result := decision.result with input as asking(["identity", "education"])
	denied_with(result, {"category_not_covered"})
	result.reasons == [{
		"code": "category_not_covered",
		"message": "no active consent or grant covers category education for this agency and purpose now",
	}]
}

# METADATA
# title: Deny with a withdrawn consent
test_deny_withdrawn_consent if {
	withdrawn := object.union(consent, {"state": "withdrawn"})
	result := decision.result with input as with_patch({"consents": [withdrawn]})
	denied_with(result, {"category_not_covered"})
}

# METADATA
# title: Deny with a consent that ended exactly now
test_deny_consent_ended if {
	ended := object.union(consent, {"valid_until": now})
	result := decision.result with input as with_patch({"consents": [ended]})
	denied_with(result, {"category_not_covered"})
}

# METADATA
# title: Deny with a consent not yet in force
test_deny_consent_not_yet_valid if {
	future := object.union(consent, {"valid_from": "2026-11-28T12:00:01Z"})
	result := decision.result with input as with_patch({"consents": [future]})
	denied_with(result, {"category_not_covered"})
}

# METADATA
# title: Deny with a consent for other recipients
test_deny_consent_other_recipient if {
	other := object.union(consent, {"recipients": ["agency-school"]})
	result := decision.result with input as with_patch({"consents": [other]})
	denied_with(result, {"category_not_covered"})
}

# METADATA
# title: Deny with a consent for another purpose
test_deny_consent_other_purpose if {
	other := object.union(consent, {"purposes": ["intervention_planning"]})
	result := decision.result with input as with_patch({"consents": [other]})
	denied_with(result, {"category_not_covered"})
}

# METADATA
# title: Deny with a consent whose end is missing rather than null
test_deny_consent_without_valid_until if {
	result := decision.result with input as with_patch({"consents": [json.remove(consent, ["valid_until"])]})
	denied_with(result, {"category_not_covered"})
}

# METADATA
# title: Deny when the time is missing
test_deny_missing_now if {
	result := decision.result with input as json.remove(base, ["now"])
	denied_with(result, {"category_not_covered"})
}

# METADATA
# title: Deny with an expired grant
test_deny_expired_grant if {
	expired := object.union(grant, {"expires_at": now})
	result := decision.result with input as object.union(
		asking(["education"]),
		{"grants": [expired]},
	)
	denied_with(result, {"category_not_covered"})
}

# METADATA
# title: Deny with a grant not yet in force
test_deny_grant_not_yet_valid if {
	future := object.union(grant, {"not_before": "2026-11-28T12:00:01Z"})
	result := decision.result with input as object.union(
		asking(["education"]),
		{"grants": [future]},
	)
	denied_with(result, {"category_not_covered"})
}

# METADATA
# title: Deny with a revoked grant
test_deny_revoked_grant if {
	revoked := object.union(grant, {"state": "revoked"})
	result := decision.result with input as object.union(
		asking(["education"]),
		{"grants": [revoked]},
	)
	denied_with(result, {"category_not_covered"})
}

# METADATA
# title: Deny with a grant for another agency
test_deny_grant_other_agency if {
	other := object.union(grant, {"agency": "agency-school"})
	result := decision.result with input as object.union(
		asking(["education"]),
		{"grants": [other]},
	)
	denied_with(result, {"category_not_covered"})
}

# METADATA
# title: Deny with a grant whose legal basis a grant may not carry
test_deny_grant_bad_legal_basis if {
	bad := object.union(grant, {"legal_basis": "consent"})
	result := decision.result with input as object.union(
		asking(["education"]),
		{"grants": [bad]},
	)
	denied_with(result, {"category_not_covered"})
}

# METADATA
# title: Deny when grants under different legal bases are needed
test_deny_mixed_legal_basis if {
	other := object.union(grant, {
		"id": "grant-2",
		"categories": ["social_care"],
		"legal_basis": "legal_obligation",
	})
	narrow := object.union(grant, {"categories": ["education"]})
	result := decision.result with input as object.union(
		asking(["education", "social_care"]),
		{"consents": [], "grants": [narrow, other]},
	)
	denied_with(result, {"mixed_legal_basis"})
}

# ---------------------------------------------------------------------------------------
# Deny: missing input and the safety net

# METADATA
# title: Deny an empty input
test_deny_empty_input if {
	result := decision.result with input as {}
	denied_with(result, {"not_panel_member", "unknown_purpose", "no_categories"})
}

# METADATA
# title: Reasons are sorted by code
test_deny_reasons_sorted if {
	result := decision.result with input as {}
	[reason.code | some reason in result.reasons] == ["no_categories", "not_panel_member", "unknown_purpose"]
}

# METADATA
# title: A deny with no deny reason still says why
test_deny_safety_net if {
	result := decision.result with input as base with decision.allow as false
	denied_with(result, {"no_rule_allowed"})
}
