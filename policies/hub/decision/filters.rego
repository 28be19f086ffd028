# METADATA
# title: The four filters
# description: >-
#   Who may see which category at which stage. The profile's release table,
#   profile.release[stage][category], names an audience: "members" (every panel member),
#   "designated" (the agencies the panel designated to act) or "lead_and_designated" (the
#   lead agency and the designated, assisting agencies). A category a stage does not list
#   is not released at that stage. With the shipped profiles this is the situation-table
#   practice: de-identified summary to all members while the case is screened (filter 2),
#   identity and records only to designated agencies from assessment on (filter 3), the
#   full intervention picture only to the lead and assisting agencies (filter 4), and
#   nothing new once the case is signposted or closed. Break-glass is the one path that
#   is not filtered by audience (see breakglass.rego); it is still limited to panel
#   members and open cases.
package hub.decision

# METADATA
# title: Stage release
# description: The profile's release table for the case's stage (category to audience).
stage_release := profile.release[input.case.stage] if is_object(profile.release[input.case.stage])

# METADATA
# title: Released audiences
# description: >-
#   For each requested, known category the profile releases at this stage, the audience
#   it goes to (only audiences listed in data.hub.config.audiences count).
released_audience[category] := audience if {
	some category in known_categories
	audience := stage_release[category]
	is_object(config.audiences[audience])
}

# METADATA
# title: Unreleased categories
# description: Requested, known categories the profile releases to nobody at this stage.
unreleased_categories contains category if {
	some category in known_categories
	not released_audience[category]
}

# METADATA
# title: Requester's audiences (members)
# description: A panel member belongs to the audience of every member.
requester_audiences contains "members" if panel_member

# METADATA
# title: Requester's audiences (designated)
# description: A designated agency belongs to the designated audience.
requester_audiences contains "designated" if designated_agency

# METADATA
# title: Requester's audiences (lead and assisting)
# description: >-
#   The lead agency and the designated agencies belong to the audience of the lead and
#   assisting agencies.
requester_audiences contains "lead_and_designated" if lead_or_designated_agency

# METADATA
# title: Cleared categories (ordinary path)
# description: >-
#   On an ordinary request, the categories released at this open stage to an audience the
#   requester belongs to.
cleared_categories contains category if {
	ordinary_request
	stage_open
	some category, audience in released_audience
	audience in requester_audiences
}

# METADATA
# title: Cleared categories (break-glass)
# description: On a break-glass request, the categories in the profile's break-glass set.
cleared_categories contains category if {
	break_glass_requested
	some category in break_glass_categories
}

# METADATA
# title: Designated agency
# description: The requester is one of the case's designated agencies.
designated_agency if {
	is_string(requester_agency)
	is_array(input.case.designated_agencies)
	requester_agency in input.case.designated_agencies
}

# METADATA
# title: Lead or designated agency (designated)
# description: A designated agency counts as assisting.
lead_or_designated_agency if designated_agency

# METADATA
# title: Lead or designated agency (lead)
# description: The requester is the case's lead agency.
lead_or_designated_agency if {
	is_string(requester_agency)
	input.case.lead_agency == requester_agency
}

# METADATA
# title: De-identified stage
# description: The panel discusses the case without identity at this stage (filter 2).
deidentified_stage if config.stages[input.case.stage].deidentified == true

# METADATA
# title: Identified stage
# description: An open stage at which identity may go to the agencies designated to act.
identified_stage if config.stages[input.case.stage].deidentified == false

# METADATA
# title: Deny identifying data before assessment
# description: >-
#   While the case is screened, members see only the de-identified summary: identity,
#   contact and every other category the stage does not release are refused.
deny contains reason if {
	not break_glass_requested
	profile_known
	stage_open
	deidentified_stage
	some category in unreleased_categories
	reason := {
		"code": "identity_before_assessment",
		"message": sprintf(
			"category %s is not shared at stage %s: until the panel agrees the risk is elevated it sees only the de-identified summary (%s)",
			[category, input.case.stage, list_or_none(object.keys(stage_release))],
		),
	}
}

# METADATA
# title: Deny a category the stage does not release
# description: >-
#   At an identified stage, a category the profile does not release at that stage is
#   refused (with the shipped profiles: health before the intervention).
deny contains reason if {
	not break_glass_requested
	profile_known
	stage_open
	identified_stage
	some category in unreleased_categories
	reason := {
		"code": "category_not_released_at_stage",
		"message": sprintf(
			"category %s is not released to anyone at stage %s under this panel profile",
			[category, input.case.stage],
		),
	}
}

# METADATA
# title: Deny an agency the panel did not designate
# description: Filter 3: identity and records go only to the agencies designated to act.
deny contains reason if {
	not break_glass_requested
	profile_known
	stage_open
	some category, audience in released_audience
	audience == "designated"
	not designated_agency
	reason := {
		"code": "not_designated_agency",
		"message": sprintf(
			"at stage %s category %s goes only to the agencies the panel designated to act",
			[input.case.stage, category],
		),
	}
}

# METADATA
# title: Deny an agency that is neither lead nor assisting
# description: Filter 4: the intervention's data goes only to the lead and assisting agencies.
deny contains reason if {
	not break_glass_requested
	profile_known
	stage_open
	some category, audience in released_audience
	audience == "lead_and_designated"
	not lead_or_designated_agency
	reason := {
		"code": "not_lead_or_assisting_agency",
		"message": sprintf(
			"at stage %s category %s goes only to the lead and assisting agencies",
			[input.case.stage, category],
		),
	}
}

# METADATA
# title: Deny anything new on a closed case
# description: >-
#   Once a case is signposted or closed, nothing new is disclosed, break-glass included.
deny contains reason if {
	case_closed
	reason := {
		"code": "case_closed",
		"message": sprintf(
			"the case is at stage %s: nothing new is disclosed once a case is signposted or closed",
			[input.case.stage],
		),
	}
}
