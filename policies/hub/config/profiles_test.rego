# METADATA
# title: Tests of the shipped panel profiles
# description: >-
#   Each profile's data is complete and consistent, and a case walks through its stages
#   with the differences that matter: the situation table needs consent or a grant for
#   identity, Channel is consent-based with an age of consent of 18, the safety house's
#   covenant is a public task for case work but never for health.
package hub.profiles_test

import data.hub.config
import data.hub.decision
import data.hub.fixtures_test as fx

# ---------------------------------------------------------------------------------------
# Data

# METADATA
# title: The three profiles ship
test_profiles_shipped if {
	object.keys(config.profiles) == {"situation_table", "channel_panel", "safety_house"}
}

# METADATA
# title: Every profile has every part, in the vocabulary of the hub
test_profiles_complete if {
	every name, profile in config.profiles {
		is_string(profile.label)
		is_string(profile.description)
		is_number(profile.age_of_consent)
		object.keys(profile.stage_purposes) == object.keys(config.stages)
		object.keys(profile.release) == object.keys(config.stages)
		profile.break_glass.max_hours == 72
		count(profile.break_glass.categories) > 0
		is_string(profile.threshold.name)
		count(profile.threshold.dimensions) > 0
		name != ""
	}
}

# METADATA
# title: Every profile value names known purposes, categories, audiences and bases
test_profiles_use_known_values if {
	every profile in config.profiles {
		every stage, purposes in profile.stage_purposes {
			every purpose in purposes {
				purpose in config.stage_purposes[stage]
			}
		}
		every purpose, categories in profile.purpose_categories {
			config.purposes[purpose]
			known_category_list(categories)
		}
		every stage, release in profile.release {
			config.stages[stage]
			every category, audience in release {
				config.categories[category]
				config.audiences[audience]
			}
		}
		every term in profile.legal_bases {
			term.basis in config.profile_legal_bases
			every category in term.categories {
				config.categories[category].special == false
			}
		}
	}
}

# METADATA
# title: A category list is "default" or known categories
known_category_list(categories) if categories == "default"

# METADATA
# title: A category list of known categories
known_category_list(categories) if {
	is_array(categories)
	every category in categories {
		config.categories[category]
	}
}

# METADATA
# title: Closed stages
closed_stages contains stage if {
	some stage, terms in config.stages
	terms.open == false
}

# METADATA
# title: Closed stages release nothing and allow no purpose
test_profiles_closed_stages_empty if {
	closed_stages == {"signposted", "closed"}
	every profile in config.profiles {
		every stage in closed_stages {
			profile.release[stage] == {}
			profile.stage_purposes[stage] == []
		}
	}
}

# ---------------------------------------------------------------------------------------
# Walking a case through the stages

# METADATA
# title: A case of a profile at a stage
at(profile, stage, patch) := object.union(
	fx.with_patch({"case": {"profile": profile, "stage": stage}}),
	patch,
)

# METADATA
# title: School asks for the de-identified summary for screening, with no consent
summary := {
	"requester": {"agency": "agency-school"},
	"request": {"purpose": "screening", "categories": ["behavioural_indicators", "protective_factors"]},
	"consents": [],
}

# METADATA
# title: Police, designated, asks for identity for a risk assessment, with no consent
identity_without_consent := {"consents": []}

# METADATA
# title: Social care, the lead, asks for education for the intervention under a grant
intervention_by_grant := {
	"requester": {"agency": "agency-social"},
	"request": {"purpose": "intervention_planning", "categories": ["education"]},
	"consents": [],
	"grants": [object.union(fx.grant, {"agency": "agency-social", "purposes": ["intervention_planning"]})],
}

# METADATA
# title: Situation table: referred, screening, assessment, intervention, closed
test_walk_situation_table if {
	fx.allowed_with(fx.decide(at("situation_table", "referred", summary)), "public_task", ["behavioural_indicators", "protective_factors"])
	fx.allowed_with(fx.decide(at("situation_table", "screening", summary)), "public_task", ["behavioural_indicators", "protective_factors"])
	"identity_before_assessment" in fx.codes(fx.decide(at("situation_table", "screening", {"request": {"purpose": "screening"}})))
	fx.allowed_with(fx.decide(at("situation_table", "assessment", {})), "consent", ["contact", "identity"])
	fx.denied_with(fx.decide(at("situation_table", "assessment", identity_without_consent)), {"category_not_covered"})
	fx.allowed_with(fx.decide(at("situation_table", "intervention", intervention_by_grant)), "public_task", ["education"])
	fx.denied_with(fx.decide(at("situation_table", "closed", {})), {"case_closed"})
}

# METADATA
# title: Channel: the duty to cooperate covers the summary, identity needs consent
test_walk_channel_panel if {
	fx.allowed_with(fx.decide(at("channel_panel", "referred", summary)), "legal_obligation", ["behavioural_indicators", "protective_factors"])
	fx.allowed_with(fx.decide(at("channel_panel", "screening", summary)), "legal_obligation", ["behavioural_indicators", "protective_factors"])
	"identity_before_assessment" in fx.codes(fx.decide(at("channel_panel", "screening", {"request": {"purpose": "screening"}})))
	fx.allowed_with(fx.decide(at("channel_panel", "assessment", {})), "consent", ["contact", "identity"])
	fx.denied_with(fx.decide(at("channel_panel", "assessment", identity_without_consent)), {"category_not_covered"})
	fx.allowed_with(fx.decide(at("channel_panel", "intervention", intervention_by_grant)), "public_task", ["education"])
	fx.denied_with(fx.decide(at("channel_panel", "signposted", {})), {"case_closed"})
}

# METADATA
# title: Channel: a 17-year-old's own consent does not count (age of consent 18)
test_channel_age_of_consent_18 if {
	seventeen := {"case": {"subject_age": 17, "subject_is_minor": true}}
	fx.denied_with(fx.decide(at("channel_panel", "assessment", seventeen)), {"category_not_covered", "minor_consent_not_from_parent"})
	fx.allowed_with(fx.decide(at("situation_table", "assessment", seventeen)), "consent", ["contact", "identity"])
	eighteen := {"case": {"subject_age": 18, "subject_is_minor": false}}
	fx.allowed_with(fx.decide(at("channel_panel", "assessment", eighteen)), "consent", ["contact", "identity"])
}

# METADATA
# title: Safety house: the covenant covers case work without consent
test_walk_safety_house if {
	fx.allowed_with(fx.decide(at("safety_house", "referred", summary)), "public_task", ["behavioural_indicators", "protective_factors"])
	fx.allowed_with(fx.decide(at("safety_house", "screening", summary)), "public_task", ["behavioural_indicators", "protective_factors"])
	"identity_before_assessment" in fx.codes(fx.decide(at("safety_house", "screening", {"request": {"purpose": "screening"}})))
	fx.allowed_with(fx.decide(at("safety_house", "assessment", identity_without_consent)), "public_task", ["contact", "identity"])
	fx.allowed_with(fx.decide(at("safety_house", "intervention", {"request": {"purpose": "intervention_planning"}, "consents": []})), "public_task", ["contact", "identity"])
	fx.denied_with(fx.decide(at("safety_house", "closed", {})), {"case_closed"})
}

# METADATA
# title: Safety house: the covenant never covers health
test_safety_house_health_needs_explicit_consent if {
	health := {"request": {"purpose": "intervention_planning", "categories": ["health"]}, "consents": []}
	fx.denied_with(fx.decide(at("safety_house", "intervention", health)), {"category_not_covered", "special_category_needs_explicit_consent"})
	explicit := object.union(health, {"consents": [object.union(fx.consent, {"categories": ["health"], "explicit": true})]})
	fx.allowed_with(fx.decide(at("safety_house", "intervention", explicit)), "consent", ["health"])
}

# METADATA
# title: Safety house: the covenant still respects the designated-agency filter
test_safety_house_designated_only if {
	school := {"requester": {"agency": "agency-school"}, "consents": []}
	fx.denied_with(fx.decide(at("safety_house", "assessment", school)), {"not_designated_agency"})
}

# METADATA
# title: Every profile allows break-glass at every open stage and refuses it when closed
test_break_glass_in_every_profile if {
	every name in object.keys(config.profiles) {
		every stage, terms in config.stages {
			result := decision.result with input as object.union(fx.break_glass, {"case": {"profile": name, "stage": stage}})
			result.allow == terms.open
		}
	}
}
