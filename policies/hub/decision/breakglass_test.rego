# METADATA
# title: Tests of break-glass
# description: >-
#   The emergency path: its purpose, justification, categories, 72-hour window to the
#   second, obligations, and what it does and does not bypass.
package hub.breakglass_test

import data.hub.decision
import data.hub.fixtures_test as fx

# METADATA
# title: Break-glass with a patch
bg(patch) := object.union(fx.break_glass, patch)

# METADATA
# title: Break-glass with the window opened at a time
opened_at(since) := bg({"request": {"break_glass_since": since}})

# METADATA
# title: Allow break-glass: vital interests, DPO review
test_allow_break_glass if {
	result := decision.result with input as fx.break_glass
	result.allow == true
	result.permitted_categories == ["identity"]
	result.legal_basis == "vital_interests"
	result.obligations == ["dpo_review", "redact_third_parties"]
	result.reasons == [{
		"code": "covered_by_break_glass",
		"message": "break-glass covers category identity under vital_interests; the data protection officer will review this disclosure",
	}]
}

# METADATA
# title: Break-glass needs no consent and ignores the designated-agency filter
test_allow_break_glass_for_undesignated_member if {
	result := decision.result with input as bg({
		"requester": {"agency": "agency-school"},
		"case": {"designated_agencies": []},
	})
	result.allow == true
	result.legal_basis == "vital_interests"
}

# METADATA
# title: Break-glass is allowed before assessment
test_allow_break_glass_at_referred if {
	result := decision.result with input as bg({
		"case": {"stage": "referred"},
		"request": {"categories": ["identity", "contact", "health"]},
	})
	result.allow == true
	result.permitted_categories == ["contact", "health", "identity"]
}

# METADATA
# title: Break-glass is still limited to panel members
test_deny_break_glass_not_panel_member if {
	result := decision.result with input as bg({"requester": {"panels": ["panel-2"]}})
	fx.denied_with(result, {"not_panel_member"})
}

# METADATA
# title: Break-glass is refused on a closed case
test_deny_break_glass_case_closed if {
	result := decision.result with input as bg({"case": {"stage": "closed"}})
	fx.denied_with(result, {"case_closed"})
}

# METADATA
# title: Break-glass only for safeguarding emergencies
test_deny_break_glass_wrong_purpose if {
	result := decision.result with input as bg({"request": {"purpose": "risk_assessment"}})
	fx.denied_with(result, {"break_glass_wrong_purpose"})
	result.reasons[0].message == "break-glass may only be used for purpose safeguarding_emergency"
}

# METADATA
# title: Break-glass needs a justification of at least 20 characters
test_deny_break_glass_short_justification if {
	result := decision.result with input as bg({"request": {"justification": "child at risk now!!"}})
	fx.denied_with(result, {"break_glass_needs_justification"})
	result.reasons[0].message == "break-glass needs a written justification of at least 20 characters"
}

# METADATA
# title: A justification of exactly 20 characters is enough
test_allow_break_glass_justification_of_20 if {
	result := decision.result with input as bg({"request": {"justification": "child at risk now!!!"}})
	result.allow == true
}

# METADATA
# title: Blanks do not count towards the justification
test_deny_break_glass_blank_justification if {
	result := decision.result with input as bg({"request": {"justification": concat("", ["  ", "short", "                       "])}})
	fx.denied_with(result, {"break_glass_needs_justification"})
}

# METADATA
# title: A missing justification denies
test_deny_break_glass_missing_justification if {
	result := decision.result with input as json.remove(fx.break_glass, ["request/justification"])
	fx.denied_with(result, {"break_glass_needs_justification"})
}

# METADATA
# title: Break-glass covers only the profile's break-glass categories
test_deny_break_glass_category_not_allowed if {
	result := decision.result with input as bg({"request": {"categories": ["identity", "police_contact"]}})
	fx.denied(result)
	"break_glass_category_not_allowed" in fx.codes(result)
	some reason in result.reasons
	reason.message == "category police_contact is not available under break-glass; break-glass covers: contact, health, identity"
}

# METADATA
# title: Allow break-glass a second before its window ends (72 hours)
test_allow_break_glass_72h_minus_a_second if {
	result := decision.result with input as opened_at("2026-11-25T12:00:01Z")
	result.allow == true
}

# METADATA
# title: Deny break-glass exactly 72 hours after its window opened
test_deny_break_glass_at_72h if {
	result := decision.result with input as opened_at("2026-11-25T12:00:00Z")
	fx.denied_with(result, {"break_glass_expired"})
	result.reasons[0].message == "this agency's break-glass window on the case has ended (it lasts 72 hours from its opening); ask the coordinator for a grant"
}

# METADATA
# title: Deny break-glass whose window opening is missing or not a string
test_deny_break_glass_bad_since if {
	missing := decision.result with input as json.remove(fx.break_glass, ["request/break_glass_since"])
	fx.denied_with(missing, {"break_glass_expired"})
	number := decision.result with input as opened_at(1764331200)
	fx.denied_with(number, {"break_glass_expired"})
}

# METADATA
# title: Deny break-glass whose window opens in the future
test_deny_break_glass_since_in_future if {
	result := decision.result with input as opened_at(fx.second_later)
	fx.denied_with(result, {"break_glass_expired"})
}

# METADATA
# title: A safeguarding emergency without break-glass is denied
test_deny_safeguarding_emergency_needs_break_glass if {
	result := decision.result with input as bg({"request": {"break_glass": false}})
	fx.denied(result)
	"safeguarding_emergency_needs_break_glass" in fx.codes(result)
}

# METADATA
# title: Break-glass does not lift the purpose's category list
test_deny_break_glass_category_outside_purpose if {
	result := decision.result with input as bg({"request": {"categories": ["education"]}})
	fx.denied_with(result, {"break_glass_category_not_allowed", "category_not_allowed_for_purpose"})
}
