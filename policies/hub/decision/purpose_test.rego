# METADATA
# title: Tests of the purpose limitation
# description: Purposes per stage and profile, categories per purpose, unknown and refused values.
package hub.purpose_test

import data.hub.decision
import data.hub.fixtures_test as fx

# METADATA
# title: Deny an unknown purpose
test_deny_unknown_purpose if {
	result := decision.result with input as fx.with_patch({"request": {"purpose": "curiosity"}})
	fx.denied_with(result, {"unknown_purpose", "category_not_covered"})
	not contains(json.marshal(result), "curiosity")
}

# METADATA
# title: Deny a purpose the stage does not allow, naming what it does allow
test_deny_purpose_not_allowed_at_stage if {
	result := decision.result with input as fx.with_patch({
		"case": {"stage": "screening"},
		"request": {"categories": ["behavioural_indicators"]},
		"consents": [object.union(fx.consent, {"categories": ["behavioural_indicators"]})],
	})
	fx.denied_with(result, {"purpose_not_allowed_at_stage"})
	result.reasons == [{
		"code": "purpose_not_allowed_at_stage",
		"message": "purpose risk_assessment is not allowed at case stage screening; allowed there: safeguarding_emergency, screening",
	}]
}

# METADATA
# title: Deny on an unknown stage
test_deny_unknown_stage if {
	result := decision.result with input as fx.with_patch({"case": {"stage": "archived"}})
	fx.denied_with(result, {"purpose_not_allowed_at_stage"})
	result.reasons[0].message == "the case's stage is missing or unknown, so no purpose is allowed"
}

# METADATA
# title: Deny when the stage is missing
test_deny_missing_stage if {
	result := decision.result with input as json.remove(fx.base, ["case/stage"])
	fx.denied_with(result, {"purpose_not_allowed_at_stage"})
}

# METADATA
# title: Oversight is a known purpose no stage allows
test_deny_oversight_purpose if {
	result := decision.result with input as fx.with_patch({"request": {"purpose": "oversight"}})
	fx.denied(result)
	"purpose_not_allowed_at_stage" in fx.codes(result)
	"category_not_allowed_for_purpose" in fx.codes(result)
}

# METADATA
# title: The hub-wide ceiling bounds every profile
test_stage_ceiling_bounds_profile if {
	patched := fx.config_with("/profiles/situation_table/stage_purposes/referred", ["risk_assessment"])
	result := decision.result with input as fx.with_patch({"case": {"stage": "referred"}})
		with data.hub.config as patched
	fx.denied(result)
	some reason in result.reasons
	reason.message == "purpose risk_assessment is not allowed at case stage referred; allowed there: none"
}

# METADATA
# title: Deny a request without categories
test_deny_no_categories if {
	result := decision.result with input as fx.asking([])
	fx.denied_with(result, {"no_categories"})
}

# METADATA
# title: Deny a request whose categories are missing
test_deny_missing_categories if {
	result := decision.result with input as json.remove(fx.base, ["request/categories"])
	fx.denied_with(result, {"no_categories"})
}

# METADATA
# title: Deny an unknown category, without echoing it
test_deny_unknown_category if {
	result := decision.result with input as fx.asking(["identity", "shoe_size"])
	fx.denied_with(result, {"unknown_category"})
	not contains(json.marshal(result), "shoe_size")
}

# METADATA
# title: Religion, ethnicity and political opinion are refused by name
test_deny_refused_categories if {
	result := decision.result with input as fx.asking(["religion", "ethnicity", "political_opinion"])
	fx.denied_with(result, {"unknown_category"})
	count(result.reasons) == 3
	some reason in result.reasons
	reason.message == "the hub never discloses religion: it is not a data category and may not be a ground for referral"
}

# METADATA
# title: The refused categories are never data categories
test_refused_are_not_categories if {
	some refused in data.hub.config.refused_categories
	not data.hub.config.categories[refused]
}

# METADATA
# title: Deny a category the purpose does not allow
test_deny_category_not_allowed_for_purpose if {
	health_consent := object.union(fx.consent, {"categories": ["identity", "health"], "explicit": true})
	result := decision.result with input as object.union(
		fx.asking(["identity", "health"]),
		{"consents": [health_consent]},
	)
	fx.denied_with(result, {"category_not_allowed_for_purpose", "category_not_released_at_stage"})
	some reason in result.reasons
	reason.message == "category health is not allowed for purpose risk_assessment"
}

# METADATA
# title: A profile can list a purpose's categories instead of the default
test_profile_lists_purpose_categories if {
	result := decision.result with input as fx.base
		with data.hub.config as fx.config_with("/profiles/situation_table/purpose_categories/risk_assessment", ["identity"])
	fx.denied_with(result, {"category_not_allowed_for_purpose"})
	narrowed := decision.result with input as fx.asking(["identity"])
		with data.hub.config as fx.config_with("/profiles/situation_table/purpose_categories/risk_assessment", ["identity"])
	fx.allowed_with(narrowed, "consent", ["identity"])
}

# METADATA
# title: A purpose the profile does not name allows no category
test_profile_without_purpose_allows_nothing if {
	result := decision.result with input as fx.base
		with data.hub.config as fx.config_with("/profiles/situation_table/purpose_categories", {"screening": "default"})
	fx.denied_with(result, {"category_not_allowed_for_purpose"})
}
