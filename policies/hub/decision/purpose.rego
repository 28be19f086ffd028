# METADATA
# title: Purpose limitation
# description: >-
#   Which purposes a case's stage allows and which categories a purpose may use, per panel
#   profile. A profile lists the purposes of each stage; the hub-wide table
#   data.hub.config.stage_purposes is a ceiling no profile can go above. A profile names
#   the categories of each purpose as a list, or as "default" for the shared table
#   data.hub.config.purpose_categories; a purpose the profile does not name allows no
#   category.
package hub.decision

# ---------------------------------------------------------------------------------------
# Stages

# METADATA
# title: Stage known
# description: The case's stage is one of the hub's stages and the profile lists it.
stage_known if {
	is_object(config.stages[input.case.stage])
	is_array(profile.stage_purposes[input.case.stage])
}

# METADATA
# title: Stage open
# description: The case's stage is known and still open (not signposted or closed).
stage_open if {
	stage_known
	config.stages[input.case.stage].open == true
}

# METADATA
# title: Case closed
# description: The case's stage is one after which nothing new is disclosed.
case_closed if config.stages[input.case.stage].open == false

# METADATA
# title: Stage purposes
# description: >-
#   The purposes the profile allows at the case's stage that the hub-wide ceiling also
#   allows there.
stage_purposes contains purpose if {
	some purpose in profile.stage_purposes[input.case.stage]
	purpose in config.stage_purposes[input.case.stage]
}

# ---------------------------------------------------------------------------------------
# Purposes

# METADATA
# title: Purpose known
# description: The requested purpose is one of the hub's purposes.
purpose_known if is_object(config.purposes[input.request.purpose])

# METADATA
# title: Purpose allowed at stage
# description: The case's stage is open and allows the requested purpose under the profile.
purpose_allowed_at_stage if {
	purpose_known
	stage_open
	input.request.purpose in stage_purposes
}

# METADATA
# title: Deny an unknown purpose
# description: The purpose must be one of the hub's purposes; the message lists them.
deny contains reason if {
	not purpose_known
	reason := {
		"code": "unknown_purpose",
		"message": sprintf(
			"the request names no known purpose; use one of: %s",
			[list_or_none(object.keys(config.purposes))],
		),
	}
}

# METADATA
# title: Deny a purpose the stage does not allow
# description: >-
#   At a known, open stage the message names the stage and the purposes the profile allows
#   there. A closed case is denied with case_closed instead.
deny contains reason if {
	purpose_known
	profile_known
	stage_known
	not case_closed
	not purpose_allowed_at_stage
	reason := {
		"code": "purpose_not_allowed_at_stage",
		"message": sprintf(
			"purpose %s is not allowed at case stage %s; allowed there: %s",
			[input.request.purpose, input.case.stage, list_or_none(stage_purposes)],
		),
	}
}

# METADATA
# title: Deny any purpose at an unknown stage
# description: A case whose stage is missing or unknown allows no purpose.
deny contains reason if {
	purpose_known
	profile_known
	not stage_known
	reason := {
		"code": "purpose_not_allowed_at_stage",
		"message": "the case's stage is missing or unknown, so no purpose is allowed",
	}
}

# ---------------------------------------------------------------------------------------
# Categories

# METADATA
# title: Purpose categories (listed)
# description: The categories the profile lists for the requested purpose.
purpose_categories := profile.purpose_categories[input.request.purpose] if {
	is_array(profile.purpose_categories[input.request.purpose])
}

# METADATA
# title: Purpose categories (shared default)
# description: The shared categories of the purpose, where the profile says "default".
purpose_categories := config.purpose_categories[input.request.purpose] if {
	profile.purpose_categories[input.request.purpose] == "default"
}

# METADATA
# title: Categories allowed for the purpose
# description: The requested, known categories the purpose may use under the case's profile.
purpose_allowed_categories contains category if {
	some category in known_categories
	category in purpose_categories
}

# METADATA
# title: Deny a request without categories
# description: A request must name at least one category.
deny contains reason if {
	count(requested_categories) == 0
	reason := {
		"code": "no_categories",
		"message": "the request names no data category; name at least one",
	}
}

# METADATA
# title: Refused category
# description: One of the names the hub refuses outright (data.hub.config.refused_categories).
refused_category(category) if category in config.refused_categories

# METADATA
# title: Deny a refused category
# description: >-
#   Religion, ethnicity, political opinion and the like are not categories the hub ever
#   discloses, nor grounds for a referral (data.hub.config.refused_categories). The name
#   comes from that list, not from the caller, so it is safe to echo.
deny contains reason if {
	some category in requested_categories - known_categories
	refused_category(category)
	reason := {
		"code": "unknown_category",
		"message": sprintf(
			"the hub never discloses %s: it is not a data category and may not be a ground for referral",
			[category],
		),
	}
}

# METADATA
# title: Deny an unknown category
# description: >-
#   Every category must be one of the hub's categories. The unknown value is not echoed
#   back, since a caller could put anything there; the message lists the known ones.
deny contains reason if {
	some category in requested_categories - known_categories
	not refused_category(category)
	reason := {
		"code": "unknown_category",
		"message": sprintf(
			"the request names a category the hub does not know; known categories: %s",
			[list_or_none(object.keys(config.categories))],
		),
	}
}

# METADATA
# title: Deny a category the purpose does not allow
# description: Names the category and the purpose (both known values).
deny contains reason if {
	purpose_known
	profile_known
	some category in known_categories - purpose_allowed_categories
	reason := {
		"code": "category_not_allowed_for_purpose",
		"message": sprintf(
			"category %s is not allowed for purpose %s",
			[category, input.request.purpose],
		),
	}
}
