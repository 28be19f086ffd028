# METADATA
# title: Break-glass
# description: >-
#   An agency's immediate, narrow, short access in a safeguarding emergency. It needs
#   request.break_glass true, purpose safeguarding_emergency, a written justification of
#   at least data.hub.config.break_glass.min_justification_chars characters, only
#   categories in the profile's break-glass set, and it lasts profile.break_glass.max_hours
#   from request.break_glass_since (when this agency's window on the case opened; null
#   means it opens now). It rests on vital interests, is queued for the DPO's review and
#   is not filtered by audience (that is the point of it), but it is still limited to panel
#   members and open cases. Consents and grants play no part in it.
package hub.decision

# METADATA
# title: Break-glass purpose
# description: The request is for the one purpose break-glass serves.
break_glass_purpose if input.request.purpose == config.break_glass.purpose

# METADATA
# title: Break-glass justified
# description: The justification, without surrounding blanks, is long enough.
break_glass_justified if {
	is_string(input.request.justification)
	count(trim_space(input.request.justification)) >= config.break_glass.min_justification_chars
}

# METADATA
# title: Break-glass categories
# description: The requested, known categories in the profile's break-glass set.
break_glass_categories contains category if {
	some category in known_categories
	category in profile.break_glass.categories
}

# METADATA
# title: Break-glass window length
# description: The profile's maximum break-glass window in nanoseconds.
break_glass_max_ns := profile.break_glass.max_hours * 3600000000000 if {
	is_number(profile.break_glass.max_hours)
}

# METADATA
# title: Break-glass window opens now
# description: No window is open yet, so this request opens one now.
break_glass_window_open if {
	input.request.break_glass_since == null
	is_number(now_ns)
	is_number(break_glass_max_ns)
}

# METADATA
# title: Break-glass window still open
# description: >-
#   The window opened at or before now and now is strictly before its end
#   (since <= now < since + max_hours).
break_glass_window_open if {
	since := timestamp_ns(input.request.break_glass_since)
	since <= now_ns
	now_ns < since + break_glass_max_ns
}

# METADATA
# title: Break-glass permitted
# description: Every break-glass condition holds (membership and stage are checked in allow).
break_glass_permitted if {
	break_glass_requested
	profile_known
	break_glass_purpose
	break_glass_justified
	break_glass_window_open
	count(requested_categories) > 0
	count(requested_categories - break_glass_categories) == 0
}

# METADATA
# title: Break-glass reasons on allow
# description: What break-glass covers, and that the DPO will review it.
allow_reasons contains reason if {
	break_glass_permitted
	some category in requested_categories
	reason := {
		"code": "covered_by_break_glass",
		"message": sprintf(
			"break-glass covers category %s under %s; the data protection officer will review this disclosure",
			[category, config.break_glass.legal_basis],
		),
	}
}

# METADATA
# title: Deny break-glass for another purpose
# description: Break-glass serves only safeguarding emergencies.
deny contains reason if {
	break_glass_requested
	not break_glass_purpose
	reason := {
		"code": "break_glass_wrong_purpose",
		"message": sprintf(
			"break-glass may only be used for purpose %s",
			[config.break_glass.purpose],
		),
	}
}

# METADATA
# title: Deny break-glass without a justification
# description: Break-glass needs a written justification of the minimum length.
deny contains reason if {
	break_glass_requested
	not break_glass_justified
	reason := {
		"code": "break_glass_needs_justification",
		"message": sprintf(
			"break-glass needs a written justification of at least %v characters",
			[config.break_glass.min_justification_chars],
		),
	}
}

# METADATA
# title: Deny a category outside the break-glass set
# description: Names the category and the categories break-glass covers under the profile.
deny contains reason if {
	break_glass_requested
	profile_known
	some category in known_categories - break_glass_categories
	reason := {
		"code": "break_glass_category_not_allowed",
		"message": sprintf(
			"category %s is not available under break-glass; break-glass covers: %s",
			[category, list_or_none(object.get(profile, ["break_glass", "categories"], []))],
		),
	}
}

# METADATA
# title: Deny break-glass after its window
# description: >-
#   The agency's break-glass window on the case has ended (or its opening time is missing
#   or not valid). It cannot be renewed by asking again: the coordinator must grant access.
deny contains reason if {
	break_glass_requested
	not break_glass_window_open
	reason := {
		"code": "break_glass_expired",
		"message": sprintf(
			"this agency's break-glass window on the case has ended (it lasts %s from its opening); ask the coordinator for a grant",
			[break_glass_window_text],
		),
	}
}

# METADATA
# title: Break-glass window text
# description: The window's length for messages.
default break_glass_window_text := "the profile's maximum"

# METADATA
# title: Break-glass window text (known)
# description: The profile's maximum in hours.
break_glass_window_text := sprintf("%v hours", [profile.break_glass.max_hours]) if {
	is_number(profile.break_glass.max_hours)
}

# METADATA
# title: Deny a safeguarding emergency without break-glass
# description: The safeguarding_emergency purpose exists only for break-glass requests.
deny contains reason if {
	input.request.purpose == config.break_glass.purpose
	not break_glass_requested
	reason := {
		"code": "safeguarding_emergency_needs_break_glass",
		"message": sprintf(
			"purpose %s is only available as a break-glass request",
			[config.break_glass.purpose],
		),
	}
}
