# METADATA
# title: Disclosure decision
# description: >-
#   Decides whether an agency may receive data about a case for a purpose, which data
#   categories it may receive, under which legal basis and with which obligations. The hub
#   reads the single document data.hub.decision.result. Every deny reason is built on a
#   negated positive helper, so missing or malformed input denies and never allows.
#   The package is split by concern: this file holds the result, the request, membership
#   and the panel profile; purpose.rego the purpose limitation; filters.rego the four
#   filters; legal_basis.rego consent, grants, the profile's own legal bases, special
#   categories and minors; breakglass.rego the emergency path. What differs between
#   referral mechanisms is data (data.hub.config.profiles), not code.
package hub.decision

# METADATA
# title: Configuration
# description: >-
#   The hub's shared configuration and panel profiles, data.hub.config. It is a rule
#   rather than an import so that every module of the package reads it the same way (the
#   embedded engine's interpreter resolves an import only in the first module of a package
#   once a test replaces the input with `with`).
config := data.hub.config

# ---------------------------------------------------------------------------------------
# Result

# METADATA
# title: Result
# description: >-
#   The whole decision as one object: allow, permitted_categories (sorted),
#   legal_basis (string or null), obligations (sorted) and reasons (sorted by code, then
#   message). This is the only document the hub evaluates.
result := {
	"allow": allow,
	"permitted_categories": permitted_categories,
	"legal_basis": legal_basis,
	"obligations": sort(obligations),
	"reasons": reasons,
}

# METADATA
# title: Allow
# description: >-
#   False unless there is no deny reason and every positive check holds. The positive
#   checks are repeated here, not only implied by an empty deny set, so that a deny rule
#   that fails to fire can never turn into an allow.
default allow := false

# METADATA
# title: Allow when every check holds
# description: >-
#   Requester on the case's panel, a known profile, an open stage that allows the
#   purpose, at least one category, every category allowed for the purpose and cleared
#   for this requester (by the four filters, or by break-glass), and one legal basis
#   that covers every category.
allow if {
	count(deny) == 0
	panel_member
	profile_known
	stage_open
	purpose_allowed_at_stage
	count(requested_categories) > 0
	count(requested_categories - purpose_allowed_categories) == 0
	count(requested_categories - cleared_categories) == 0
	is_string(chosen_legal_basis)
}

# METADATA
# title: Permitted categories
# description: Nothing unless allowed.
default permitted_categories := []

# METADATA
# title: Permitted categories on allow
# description: All or nothing, so on allow every requested category, sorted.
permitted_categories := sort(requested_categories) if allow

# METADATA
# title: Legal basis
# description: Null unless allowed.
default legal_basis := null

# METADATA
# title: Legal basis on allow
# description: >-
#   The one legal basis that covers every requested category (see legal_basis.rego for
#   the precedence), or vital_interests for an allowed break-glass request.
legal_basis := chosen_legal_basis if allow

# METADATA
# title: Third parties are redacted
# description: Every allowed disclosure has third parties' data redacted before it leaves.
obligations contains "redact_third_parties" if allow

# METADATA
# title: Break-glass is reviewed
# description: Every allowed break-glass disclosure is queued for the DPO's review.
obligations contains "dpo_review" if {
	allow
	break_glass_requested
}

# METADATA
# title: Reasons
# description: >-
#   On allow, what covers each category; on deny, every deny reason; and, as a safety net,
#   a deny that no rule named a reason for says so rather than give no reason at all.
#   Sorted: every reason is an object of exactly a code and a message, and OPA and the
#   embedded engine both order such objects by code, then message.
reasons := sort(allow_reasons) if {
	allow
} else := sort(deny) if {
	count(deny) > 0
} else := [{
	"code": "no_rule_allowed",
	"message": "no rule allowed this request",
}]

# ---------------------------------------------------------------------------------------
# Request

# METADATA
# title: Requested categories
# description: The distinct categories the request names.
requested_categories contains category if some category in input.request.categories

# METADATA
# title: Known categories
# description: The requested categories that are data categories of the hub.
known_categories contains category if {
	some category in requested_categories
	is_object(config.categories[category])
}

# METADATA
# title: Ordinary categories
# description: The requested categories that are known and not special.
ordinary_categories contains category if {
	some category in known_categories
	config.categories[category].special == false
}

# METADATA
# title: Special categories
# description: >-
#   The requested categories that are special categories (health): only an explicit
#   consent, or break-glass, covers them.
special_categories contains category if {
	some category in known_categories
	config.categories[category].special == true
}

# METADATA
# title: Ordinary request
# description: >-
#   The request is explicitly not a break-glass request. Allowing on the ordinary path
#   needs this to be true, so a missing break_glass flag allows nothing.
ordinary_request if input.request.break_glass == false

# METADATA
# title: Break-glass request
# description: The request explicitly asks for break-glass.
break_glass_requested if input.request.break_glass == true

# METADATA
# title: Now
# description: The decision time in nanoseconds since the epoch; undefined if missing.
now_ns := timestamp_ns(input.now)

# METADATA
# title: Timestamp
# description: >-
#   An RFC 3339 timestamp in nanoseconds since the epoch; undefined, rather than an
#   evaluation error, for anything that is not a string.
timestamp_ns(value) := time.parse_rfc3339_ns(value) if is_string(value)

# METADATA
# title: Requesting agency
# description: The requesting agency's id; undefined unless it is a string.
requester_agency := input.requester.agency if is_string(input.requester.agency)

# ---------------------------------------------------------------------------------------
# Membership

# METADATA
# title: Panel member
# description: The requesting agency is a member of the case's panel.
panel_member if {
	is_string(input.case.panel)
	is_string(requester_agency)
	is_array(input.requester.panels)
	input.case.panel in input.requester.panels
}

# METADATA
# title: Deny a non-member
# description: Only agencies of the case's panel may ask about the case, break-glass included.
deny contains reason if {
	not panel_member
	reason := {
		"code": "not_panel_member",
		"message": "the requesting agency is not a member of the case's panel",
	}
}

# ---------------------------------------------------------------------------------------
# Panel profile

# METADATA
# title: Profile
# description: >-
#   The case's panel profile, data.hub.config.profiles[input.case.profile]: its stage
#   purposes, category releases, legal bases, break-glass terms and age of consent.
#   Undefined when the case names no known profile.
profile := config.profiles[input.case.profile] if is_string(input.case.profile)

# METADATA
# title: Profile known
# description: The case names one of the shipped panel profiles.
profile_known if is_object(profile)

# METADATA
# title: Deny an unknown profile
# description: >-
#   A case whose panel profile is missing or unknown gets nothing. The value is not
#   echoed; the message lists the known profiles.
deny contains reason if {
	not profile_known
	reason := {
		"code": "unknown_profile",
		"message": sprintf(
			"the case's panel profile is missing or unknown; known profiles: %s",
			[list_or_none(object.keys(config.profiles))],
		),
	}
}

# ---------------------------------------------------------------------------------------
# Helpers

# METADATA
# title: List or none
# description: A comma-separated list, or "none" for an empty one.
list_or_none(xs) := "none" if count(xs) == 0

# METADATA
# title: List or none (non-empty)
# description: A comma-separated list of the sorted items.
list_or_none(xs) := concat(", ", sort(xs)) if count(xs) > 0
