# METADATA
# title: Tests of the decision's result, membership and profile
# description: >-
#   The result's shape, the allow by consent, panel membership, the panel profile, missing
#   input and the safety net. Each test starts from the fixtures' base input.
package hub.decision_test

import data.hub.decision
import data.hub.fixtures_test as fx

# ---------------------------------------------------------------------------------------
# Result

# METADATA
# title: Allow with consent
test_allow_with_consent if {
	result := decision.result with input as fx.base
	fx.allowed_with(result, "consent", ["contact", "identity"])
	result.reasons == [
		{"code": "covered_by_consent", "message": "consent consent-1 covers category contact"},
		{"code": "covered_by_consent", "message": "consent consent-1 covers category identity"},
	]
}

# METADATA
# title: The result has exactly the five fields
test_result_shape if {
	result := decision.result with input as fx.base
	object.keys(result) == {"allow", "permitted_categories", "legal_basis", "obligations", "reasons"}
	denied := decision.result with input as {}
	object.keys(denied) == object.keys(result)
}

# METADATA
# title: Duplicate categories count once
test_allow_duplicate_categories if {
	result := decision.result with input as fx.asking(["identity", "identity"])
	fx.allowed_with(result, "consent", ["identity"])
}

# ---------------------------------------------------------------------------------------
# Membership

# METADATA
# title: Deny an agency of another panel
test_deny_not_panel_member if {
	result := decision.result with input as fx.with_patch({"requester": {"panels": ["panel-2"]}})
	fx.denied_with(result, {"not_panel_member"})
}

# METADATA
# title: Deny when the requester's panels are missing
test_deny_missing_panels if {
	result := decision.result with input as json.remove(fx.base, ["requester/panels"])
	fx.denied_with(result, {"not_panel_member"})
}

# METADATA
# title: Deny when the requester's panels are not a list
test_deny_panels_not_a_list if {
	result := decision.result with input as fx.with_patch({"requester": {"panels": "panel-1"}})
	fx.denied_with(result, {"not_panel_member"})
}

# METADATA
# title: Deny when the case's panel is missing
test_deny_missing_case_panel if {
	result := decision.result with input as json.remove(fx.base, ["case/panel"])
	fx.denied_with(result, {"not_panel_member"})
}

# ---------------------------------------------------------------------------------------
# Profile

# METADATA
# title: Deny an unknown profile, without echoing it
test_deny_unknown_profile if {
	result := decision.result with input as fx.with_patch({"case": {"profile": "secret-profile"}})
	fx.denied(result)
	"unknown_profile" in fx.codes(result)
	not contains(json.marshal(result), "secret-profile")
	some reason in result.reasons
	reason.code == "unknown_profile"
	reason.message == "the case's panel profile is missing or unknown; known profiles: channel_panel, safety_house, situation_table"
}

# METADATA
# title: Deny a missing profile
test_deny_missing_profile if {
	result := decision.result with input as json.remove(fx.base, ["case/profile"])
	fx.denied(result)
	"unknown_profile" in fx.codes(result)
}

# METADATA
# title: A new profile is data, not code
test_new_profile_is_data if {
	copy := data.hub.config.profiles.situation_table
	result := decision.result with input as fx.with_patch({"case": {"profile": "new_table"}})
		with data.hub.config as fx.config_with("/profiles/new_table", copy)
	fx.allowed_with(result, "consent", ["contact", "identity"])
}

# ---------------------------------------------------------------------------------------
# Missing input and the safety net

# METADATA
# title: Deny an empty input
test_deny_empty_input if {
	result := decision.result with input as {}
	fx.denied_with(result, {"not_panel_member", "unknown_profile", "unknown_purpose", "no_categories"})
}

# METADATA
# title: Reasons are sorted by code
test_deny_reasons_sorted if {
	result := decision.result with input as {}
	[reason.code | some reason in result.reasons] == [
		"no_categories",
		"not_panel_member",
		"unknown_profile",
		"unknown_purpose",
	]
}

# METADATA
# title: Deny when the time is missing
test_deny_missing_now if {
	result := decision.result with input as json.remove(fx.base, ["now"])
	fx.denied_with(result, {"category_not_covered"})
}

# METADATA
# title: Deny when the break-glass flag is missing
test_deny_missing_break_glass_flag if {
	result := decision.result with input as json.remove(fx.base, ["request/break_glass"])
	fx.denied_with(result, {"no_rule_allowed"})
}

# METADATA
# title: Deny when the requesting agency is missing
test_deny_missing_agency if {
	result := decision.result with input as json.remove(fx.base, ["requester/agency"])
	fx.denied_with(result, {"not_panel_member", "not_designated_agency", "category_not_covered"})
}

# METADATA
# title: A deny with no deny reason still says why
test_deny_safety_net if {
	result := decision.result with input as fx.base with decision.allow as false
	fx.denied_with(result, {"no_rule_allowed"})
}

# METADATA
# title: No message quotes the justification or the ids of the subject
test_no_personal_data_in_messages if {
	secret := "SECRET-PERSON-DATA"
	patched := fx.with_patch({
		"case": {"id": secret, "stage": "referred"},
		"request": {"justification": secret, "categories": ["identity", secret]},
	})
	result := decision.result with input as patched
	fx.denied(result)
	not contains(json.marshal(result), secret)
}
