# METADATA
# title: Tests of the four filters
# description: >-
#   Who sees which category at which stage: the de-identified summary to all members,
#   identity only to designated agencies from assessment on, the intervention only to the
#   lead and assisting agencies, nothing new on a closed case.
package hub.filters_test

import data.hub.decision
import data.hub.fixtures_test as fx

# METADATA
# title: School, a member the panel did not designate
school := {"requester": {"agency": "agency-school", "agency_kind": "school", "client": "client-school"}}

# METADATA
# title: A consent for the summary, for screening
summary_consent := object.union(fx.consent, {
	"purposes": ["screening"],
	"categories": ["behavioural_indicators", "protective_factors"],
})

# METADATA
# title: Members see the de-identified summary while the case is screened
test_allow_summary_to_any_member_at_referred if {
	result := decision.result with input as object.union(fx.base, object.union(school, {
		"case": {"stage": "referred"},
		"request": {"purpose": "screening", "categories": ["behavioural_indicators", "protective_factors"]},
		"consents": [summary_consent],
	}))
	fx.allowed_with(result, "consent", ["behavioural_indicators", "protective_factors"])
}

# METADATA
# title: Identity is refused before assessment
test_deny_identity_before_assessment if {
	result := decision.result with input as fx.with_patch({
		"case": {"stage": "screening"},
		"request": {"purpose": "screening", "categories": ["identity"]},
	})
	fx.denied(result)
	"identity_before_assessment" in fx.codes(result)
	some reason in result.reasons
	reason.code == "identity_before_assessment"
	reason.message == "category identity is not shared at stage screening: until the panel agrees the risk is elevated it sees only the de-identified summary (behavioural_indicators, protective_factors)"
}

# METADATA
# title: Contact is refused before assessment even with consent for it
test_deny_contact_before_assessment_despite_consent if {
	result := decision.result with input as fx.with_patch({
		"case": {"stage": "referred"},
		"request": {"purpose": "screening", "categories": ["contact"]},
		"consents": [object.union(fx.consent, {"purposes": ["screening"]})],
	})
	fx.denied_with(result, {"identity_before_assessment", "category_not_allowed_for_purpose"})
}

# METADATA
# title: A designated agency gets identity at assessment
test_allow_identity_to_designated_at_assessment if {
	result := decision.result with input as fx.base
	fx.allowed_with(result, "consent", ["contact", "identity"])
}

# METADATA
# title: A member the panel did not designate gets no identity at assessment
test_deny_not_designated_agency if {
	result := decision.result with input as object.union(fx.base, school)
	fx.denied_with(result, {"not_designated_agency"})
	some reason in result.reasons
	reason.message == "at stage assessment category contact goes only to the agencies the panel designated to act"
}

# METADATA
# title: Missing designated agencies designate nobody
test_deny_missing_designated_agencies if {
	result := decision.result with input as json.remove(fx.base, ["case/designated_agencies"])
	fx.denied_with(result, {"not_designated_agency"})
}

# METADATA
# title: The lead agency at assessment is not designated by being lead
test_deny_lead_not_designated_at_assessment if {
	result := decision.result with input as fx.with_patch({"case": {"lead_agency": "agency-police", "designated_agencies": []}})
	fx.denied_with(result, {"not_designated_agency"})
}

# METADATA
# title: The summary still goes to every member at assessment
test_allow_summary_to_member_at_assessment if {
	result := decision.result with input as object.union(fx.base, object.union(school, {
		"request": {"purpose": "screening", "categories": ["protective_factors"]},
		"consents": [],
	}))
	fx.allowed_with(result, "public_task", ["protective_factors"])
}

# METADATA
# title: The lead agency gets the intervention's data
test_allow_lead_at_intervention if {
	result := decision.result with input as fx.with_patch({
		"requester": {"agency": "agency-social"},
		"case": {"stage": "intervention", "designated_agencies": []},
		"request": {"purpose": "intervention_planning"},
		"consents": [object.union(fx.consent, {"recipients": ["agency-social"]})],
	})
	fx.allowed_with(result, "consent", ["contact", "identity"])
}

# METADATA
# title: An assisting (designated) agency gets the intervention's data
test_allow_assisting_at_intervention if {
	result := decision.result with input as fx.with_patch({
		"case": {"stage": "intervention"},
		"request": {"purpose": "intervention_planning"},
	})
	fx.allowed_with(result, "consent", ["contact", "identity"])
}

# METADATA
# title: A member that is neither lead nor assisting gets nothing of the intervention
test_deny_not_lead_or_assisting_agency if {
	result := decision.result with input as object.union(fx.base, object.union(school, {
		"case": {"stage": "intervention"},
		"request": {"purpose": "intervention_planning"},
	}))
	fx.denied_with(result, {"not_lead_or_assisting_agency"})
}

# METADATA
# title: Health is not released at assessment
test_deny_category_not_released_at_stage if {
	result := decision.result with input as fx.with_patch({
		"request": {"purpose": "safeguarding_emergency", "categories": ["health"]},
		"consents": [object.union(fx.consent, {
			"purposes": ["safeguarding_emergency"],
			"categories": ["health"],
			"explicit": true,
		})],
	})
	fx.denied_with(result, {"category_not_released_at_stage", "safeguarding_emergency_needs_break_glass"})
}

# METADATA
# title: An audience the hub does not know releases nothing
test_deny_unknown_audience if {
	result := decision.result with input as fx.base
		with data.hub.config as fx.config_with("/profiles/situation_table/release/assessment/identity", "everyone")
	fx.denied_with(result, {"category_not_released_at_stage"})
}

# METADATA
# title: Nothing new on a closed case
test_deny_case_closed if {
	result := decision.result with input as fx.with_patch({"case": {"stage": "closed"}})
	fx.denied_with(result, {"case_closed"})
	result.reasons[0].message == "the case is at stage closed: nothing new is disclosed once a case is signposted or closed"
}

# METADATA
# title: Nothing new on a signposted case
test_deny_case_signposted if {
	result := decision.result with input as fx.with_patch({
		"case": {"stage": "signposted"},
		"request": {"purpose": "screening", "categories": ["behavioural_indicators"]},
	})
	fx.denied(result)
	"case_closed" in fx.codes(result)
}
