# METADATA
# title: Tests of the legal basis
# description: >-
#   Consent, grants and the profile's own bases; their time windows to the second; the
#   precedence between bases; special categories; minors.
package hub.legal_basis_test

import data.hub.decision
import data.hub.fixtures_test as fx

# METADATA
# title: Asking for education by grant only
by_grant(g) := object.union(fx.asking(["education"]), {"consents": [], "grants": [g]})

# ---------------------------------------------------------------------------------------
# Consent

# METADATA
# title: Allow with a consent that ends a second from now
test_allow_consent_ending_in_a_second if {
	ending := object.union(fx.consent, {"valid_until": fx.second_later})
	result := decision.result with input as fx.with_patch({"consents": [ending]})
	fx.allowed_with(result, "consent", ["contact", "identity"])
}

# METADATA
# title: Deny with a consent that ended exactly now (half-open window)
test_deny_consent_ended_now if {
	ended := object.union(fx.consent, {"valid_until": fx.now})
	result := decision.result with input as fx.with_patch({"consents": [ended]})
	fx.denied_with(result, {"category_not_covered"})
}

# METADATA
# title: Deny with a consent that ended a second ago
test_deny_consent_ended_a_second_ago if {
	ended := object.union(fx.consent, {"valid_until": fx.second_ago})
	result := decision.result with input as fx.with_patch({"consents": [ended]})
	fx.denied_with(result, {"category_not_covered"})
}

# METADATA
# title: Allow with a consent that starts exactly now
test_allow_consent_starting_now if {
	starting := object.union(fx.consent, {"valid_from": fx.now})
	result := decision.result with input as fx.with_patch({"consents": [starting]})
	fx.allowed_with(result, "consent", ["contact", "identity"])
}

# METADATA
# title: Deny with a consent not yet in force
test_deny_consent_not_yet_valid if {
	future := object.union(fx.consent, {"valid_from": fx.second_later})
	result := decision.result with input as fx.with_patch({"consents": [future]})
	fx.denied_with(result, {"category_not_covered"})
}

# METADATA
# title: Deny with a withdrawn consent
test_deny_withdrawn_consent if {
	withdrawn := object.union(fx.consent, {"state": "withdrawn"})
	result := decision.result with input as fx.with_patch({"consents": [withdrawn]})
	fx.denied_with(result, {"category_not_covered"})
	result.reasons[0].message == "no consent, grant or legal basis of the panel covers category contact for this agency and purpose now"
}

# METADATA
# title: Deny with a consent for other recipients
test_deny_consent_other_recipient if {
	other := object.union(fx.consent, {"recipients": ["agency-school"]})
	result := decision.result with input as fx.with_patch({"consents": [other]})
	fx.denied_with(result, {"category_not_covered"})
}

# METADATA
# title: Deny with a consent for another purpose
test_deny_consent_other_purpose if {
	other := object.union(fx.consent, {"purposes": ["intervention_planning"]})
	result := decision.result with input as fx.with_patch({"consents": [other]})
	fx.denied_with(result, {"category_not_covered"})
}

# METADATA
# title: Deny with a consent whose end is missing rather than null
test_deny_consent_without_valid_until if {
	result := decision.result with input as fx.with_patch({"consents": [json.remove(fx.consent, ["valid_until"])]})
	fx.denied_with(result, {"category_not_covered"})
}

# METADATA
# title: All or nothing: one uncovered category denies the whole request
test_deny_all_or_nothing if {
	result := decision.result with input as fx.asking(["identity", "education"])
	fx.denied_with(result, {"category_not_covered"})
	result.reasons == [{
		"code": "category_not_covered",
		"message": "no consent, grant or legal basis of the panel covers category education for this agency and purpose now",
	}]
}

# ---------------------------------------------------------------------------------------
# Grants

# METADATA
# title: Allow with a grant
test_allow_with_grant if {
	result := decision.result with input as object.union(
		fx.asking(["education", "social_care"]),
		{"consents": [], "grants": [fx.grant]},
	)
	fx.allowed_with(result, "public_task", ["education", "social_care"])
	result.reasons == [
		{"code": "covered_by_grant", "message": "grant grant-1 covers category education under public_task"},
		{"code": "covered_by_grant", "message": "grant grant-1 covers category social_care under public_task"},
	]
}

# METADATA
# title: Allow with a grant one second before it expires
test_allow_grant_a_second_before_expiry if {
	result := decision.result with input as by_grant(object.union(fx.grant, {"expires_at": fx.second_later}))
	fx.allowed_with(result, "public_task", ["education"])
}

# METADATA
# title: Deny with a grant at its expiry second
test_deny_grant_at_expiry if {
	result := decision.result with input as by_grant(object.union(fx.grant, {"expires_at": fx.now}))
	fx.denied_with(result, {"category_not_covered"})
}

# METADATA
# title: Allow with a grant that starts exactly now
test_allow_grant_starting_now if {
	result := decision.result with input as by_grant(object.union(fx.grant, {"not_before": fx.now}))
	fx.allowed_with(result, "public_task", ["education"])
}

# METADATA
# title: Deny with a grant not yet in force
test_deny_grant_not_yet_valid if {
	result := decision.result with input as by_grant(object.union(fx.grant, {"not_before": fx.second_later}))
	fx.denied_with(result, {"category_not_covered"})
}

# METADATA
# title: Deny with a revoked grant
test_deny_revoked_grant if {
	result := decision.result with input as by_grant(object.union(fx.grant, {"state": "revoked"}))
	fx.denied_with(result, {"category_not_covered"})
}

# METADATA
# title: Deny with a grant for another agency
test_deny_grant_other_agency if {
	result := decision.result with input as by_grant(object.union(fx.grant, {"agency": "agency-school"}))
	fx.denied_with(result, {"category_not_covered"})
}

# METADATA
# title: A grant cannot carry consent or vital interests
test_deny_grant_bad_legal_basis if {
	every basis in ["consent", "vital_interests"] {
		result := decision.result with input as by_grant(object.union(fx.grant, {"legal_basis": basis}))
		fx.denied_with(result, {"category_not_covered"})
	}
}

# ---------------------------------------------------------------------------------------
# The profile's own legal bases

# METADATA
# title: The situation table's public task covers the de-identified screening
test_allow_profile_public_task if {
	result := decision.result with input as fx.with_patch({
		"case": {"stage": "referred"},
		"request": {"purpose": "screening", "categories": ["behavioural_indicators"]},
		"consents": [],
	})
	fx.allowed_with(result, "public_task", ["behavioural_indicators"])
	result.reasons == [{
		"code": "covered_by_profile",
		"message": "the panel profile's deidentified_discussion term covers category behavioural_indicators under public_task",
	}]
}

# METADATA
# title: The situation table's public task does not cover identity
test_deny_profile_does_not_cover_identity if {
	result := decision.result with input as fx.with_patch({"consents": []})
	fx.denied_with(result, {"category_not_covered"})
}

# METADATA
# title: A profile basis the hub does not accept covers nothing
test_deny_profile_basis_not_accepted if {
	result := decision.result with input as fx.with_patch({
		"case": {"stage": "referred"},
		"request": {"purpose": "screening", "categories": ["behavioural_indicators"]},
		"consents": [],
	})
		with data.hub.config as fx.config_with("/profiles/situation_table/legal_bases/deidentified_discussion/basis", "vital_interests")
	fx.denied_with(result, {"category_not_covered"})
}

# ---------------------------------------------------------------------------------------
# Precedence

# METADATA
# title: Consent wins over a grant when both cover everything
test_precedence_consent_over_grant if {
	both := object.union(fx.grant, {"categories": ["identity", "contact"]})
	result := decision.result with input as fx.with_patch({"grants": [both]})
	fx.allowed_with(result, "consent", ["contact", "identity"])
	fx.codes(result) == {"covered_by_consent"}
}

# METADATA
# title: Legal obligation wins over public task
test_precedence_legal_obligation_over_public_task if {
	other := object.union(fx.grant, {"id": "grant-2", "legal_basis": "legal_obligation"})
	result := decision.result with input as object.union(
		fx.asking(["education"]),
		{"consents": [], "grants": [fx.grant, other]},
	)
	fx.allowed_with(result, "legal_obligation", ["education"])
	result.reasons == [{
		"code": "covered_by_grant",
		"message": "grant grant-2 covers category education under legal_obligation",
	}]
}

# METADATA
# title: Consent wins over the profile's public task for the summary
test_precedence_consent_over_profile if {
	result := decision.result with input as fx.with_patch({
		"case": {"stage": "referred"},
		"request": {"purpose": "screening", "categories": ["behavioural_indicators"]},
		"consents": [object.union(fx.consent, {"purposes": ["screening"], "categories": ["behavioural_indicators"]})],
	})
	fx.allowed_with(result, "consent", ["behavioural_indicators"])
}

# METADATA
# title: The one basis covering everything is chosen over a partial consent
test_single_basis_covering_all_is_chosen if {
	result := decision.result with input as fx.with_patch({
		"case": {"stage": "referred"},
		"request": {"purpose": "screening", "categories": ["behavioural_indicators", "protective_factors"]},
		"consents": [object.union(fx.consent, {"purposes": ["screening"], "categories": ["behavioural_indicators"]})],
	})
	fx.allowed_with(result, "public_task", ["behavioural_indicators", "protective_factors"])
	fx.codes(result) == {"covered_by_profile"}
}

# METADATA
# title: Deny when consent and a grant each cover only part
test_deny_mixed_consent_and_grant if {
	result := decision.result with input as object.union(
		fx.asking(["identity", "education"]),
		{"grants": [fx.grant]},
	)
	fx.denied_with(result, {"mixed_legal_basis"})
}

# METADATA
# title: Deny when grants under different legal bases are needed
test_deny_mixed_legal_basis if {
	other := object.union(fx.grant, {
		"id": "grant-2",
		"categories": ["social_care"],
		"legal_basis": "legal_obligation",
	})
	narrow := object.union(fx.grant, {"categories": ["education"]})
	result := decision.result with input as object.union(
		fx.asking(["education", "social_care"]),
		{"consents": [], "grants": [narrow, other]},
	)
	fx.denied_with(result, {"mixed_legal_basis"})
	result.reasons[0].message == "the categories are covered under different legal bases; request them separately"
}

# ---------------------------------------------------------------------------------------
# Special categories

# METADATA
# title: Health is covered by an explicit consent
test_allow_health_with_explicit_consent if {
	explicit := object.union(fx.consent, {"categories": ["health"], "explicit": true})
	result := decision.result with input as fx.with_patch({
		"case": {"stage": "intervention"},
		"request": {"purpose": "intervention_planning", "categories": ["health"]},
		"consents": [explicit],
	})
	fx.allowed_with(result, "consent", ["health"])
}

# METADATA
# title: Health is not covered by a consent that is not explicit
test_deny_health_without_explicit_consent if {
	plain := object.union(fx.consent, {"categories": ["health"]})
	result := decision.result with input as fx.with_patch({
		"case": {"stage": "intervention"},
		"request": {"purpose": "intervention_planning", "categories": ["health"]},
		"consents": [plain],
	})
	fx.denied_with(result, {"category_not_covered", "special_category_needs_explicit_consent"})
	some reason in result.reasons
	reason.message == "category health is a special category: only an explicit consent, or break-glass in an emergency, covers it"
}

# METADATA
# title: Health is never covered by a grant
test_deny_health_by_grant if {
	health_grant := object.union(fx.grant, {"purposes": ["intervention_planning"], "categories": ["health"]})
	result := decision.result with input as fx.with_patch({
		"case": {"stage": "intervention"},
		"request": {"purpose": "intervention_planning", "categories": ["health"]},
		"consents": [],
		"grants": [health_grant],
	})
	fx.denied_with(result, {"category_not_covered", "special_category_needs_explicit_consent"})
}

# ---------------------------------------------------------------------------------------
# Minors

# METADATA
# title: A subject at the age of consent may consent alone
test_allow_subject_at_age_of_consent if {
	result := decision.result with input as fx.with_patch({"case": {"subject_age": 16, "subject_is_minor": true}})
	fx.allowed_with(result, "consent", ["contact", "identity"])
}

# METADATA
# title: A subject a year under the age of consent may not
test_deny_subject_under_age_of_consent if {
	result := decision.result with input as fx.with_patch({"case": {"subject_age": 15, "subject_is_minor": true}})
	fx.denied_with(result, {"category_not_covered", "minor_consent_not_from_parent"})
	every reason in result.reasons {
		not contains(reason.message, "15")
	}
}

# METADATA
# title: A parent's consent counts for a minor
test_allow_parent_consent_for_minor if {
	parental := object.union(fx.consent, {"given_by": "parent"})
	result := decision.result with input as fx.with_patch({
		"case": {"subject_age": 15, "subject_is_minor": true},
		"consents": [parental],
	})
	fx.allowed_with(result, "consent", ["contact", "identity"])
}

# METADATA
# title: A guardian's consent counts for a minor
test_allow_guardian_consent_for_minor if {
	guardian := object.union(fx.consent, {"given_by": "guardian"})
	result := decision.result with input as fx.with_patch({
		"case": {"subject_age": 3, "subject_is_minor": true},
		"consents": [guardian],
	})
	fx.allowed_with(result, "consent", ["contact", "identity"])
}

# METADATA
# title: An unknown age is read as a minor's
test_deny_unknown_age_without_parent if {
	result := decision.result with input as fx.with_patch({"case": {"subject_age": null}})
	fx.denied_with(result, {"category_not_covered", "minor_consent_not_from_parent"})
	missing := decision.result with input as json.remove(fx.base, ["case/subject_age"])
	fx.denied_with(missing, {"category_not_covered", "minor_consent_not_from_parent"})
}

# METADATA
# title: The profile's legal basis covers a minor without a parent's consent
test_allow_minor_under_profile_basis if {
	result := decision.result with input as fx.with_patch({
		"case": {"stage": "referred", "subject_age": 12, "subject_is_minor": true},
		"request": {"purpose": "screening", "categories": ["behavioural_indicators"]},
		"consents": [object.union(fx.consent, {"purposes": ["screening"], "categories": ["behavioural_indicators"]})],
	})
	fx.allowed_with(result, "public_task", ["behavioural_indicators"])
}

# METADATA
# title: A consent without a recorded giver never counts for a minor
test_deny_consent_without_giver if {
	result := decision.result with input as fx.with_patch({
		"case": {"subject_age": 15},
		"consents": [json.remove(fx.consent, ["given_by"])],
	})
	fx.denied_with(result, {"category_not_covered", "minor_consent_not_from_parent"})
	adult := decision.result with input as fx.with_patch({"consents": [json.remove(fx.consent, ["given_by"])]})
	fx.denied_with(adult, {"category_not_covered"})
}
