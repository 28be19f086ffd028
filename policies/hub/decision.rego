# METADATA
# title: Disclosure decision
# description: >-
#   Decides whether an agency may receive data about a case for a purpose, which data
#   categories it may receive, under which legal basis and with which obligations. The hub
#   reads the single document data.hub.decision.result. Every deny reason is built on a
#   negated positive helper, so missing or malformed input denies and never allows.
#   Sections below are kept apart (membership, purpose, categories, coverage, legal basis)
#   so that later rules (the four filters, special categories, minors, break-glass) can add
#   deny reasons and obligations without touching the others.
package hub.decision

import data.hub.config

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
#   Requester on the case's panel, purpose allowed at the case's stage, at least one
#   category, each category allowed for the purpose and covered, one legal basis.
allow if {
	count(deny) == 0
	panel_member
	purpose_allowed_at_stage
	count(requested_categories) > 0
	every category in requested_categories {
		category_allowed_for_purpose(category)
		category in covered_categories
	}
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
# description: The one legal basis that covers every requested category.
legal_basis := chosen_legal_basis if allow

# METADATA
# title: Obligations
# description: What the hub must do with the data before the requester sees it.
obligations contains "redact_third_parties" if allow

# METADATA
# title: Reasons on deny
# description: Every deny reason, sorted.
reasons := sorted_reasons(deny) if {
	not allow
	count(deny) > 0
}

# METADATA
# title: Reasons on a deny without a deny reason
# description: >-
#   A safety net: if no rule allowed the request but no rule named why, say so rather
#   than answer a deny with no reason at all.
reasons := [{
	"code": "no_rule_allowed",
	"message": "no rule allowed this request",
}] if {
	not allow
	count(deny) == 0
}

# METADATA
# title: Reasons on allow
# description: What covers each category, sorted.
reasons := sorted_reasons(coverage_reasons) if allow

# METADATA
# title: Sort reasons
# description: >-
#   Reasons sorted by code, then message. Sorting by a string key rather than by the
#   objects themselves keeps the order identical in OPA and in the embedded engine.
sorted_reasons(rs) := sorted if {
	by_key := {concat("\n", [r.code, r.message]): r | some r in rs}
	sorted := [by_key[key] | some key in sort(object.keys(by_key))]
}

# ---------------------------------------------------------------------------------------
# Request

# METADATA
# title: Requested categories
# description: The distinct categories the request names.
requested_categories contains category if some category in input.request.categories

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

# ---------------------------------------------------------------------------------------
# Membership

# METADATA
# title: Panel member
# description: The requesting agency is a member of the case's panel.
panel_member if {
	is_string(input.case.panel)
	is_string(input.requester.agency)
	input.case.panel in input.requester.panels
}

# METADATA
# title: Deny a non-member
# description: Only agencies of the case's panel may ask about the case.
deny contains reason if {
	not panel_member
	reason := {
		"code": "not_panel_member",
		"message": "the requesting agency is not a member of the case's panel",
	}
}

# ---------------------------------------------------------------------------------------
# Purpose

# METADATA
# title: Purpose known
# description: The requested purpose is one of the hub's purposes.
purpose_known if is_object(config.purposes[input.request.purpose])

# METADATA
# title: Stage known
# description: The case's stage is one of the hub's stages.
stage_known if is_array(config.stage_purposes[input.case.stage])

# METADATA
# title: Purpose allowed at stage
# description: The case's stage allows the requested purpose.
purpose_allowed_at_stage if {
	purpose_known
	input.request.purpose in config.stage_purposes[input.case.stage]
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
			[concat(", ", sort(object.keys(config.purposes)))],
		),
	}
}

# METADATA
# title: Deny a purpose the stage does not allow
# description: At a known stage the message names the stage and the purposes it allows.
deny contains reason if {
	purpose_known
	stage_known
	not purpose_allowed_at_stage
	allowed := config.stage_purposes[input.case.stage]
	reason := {
		"code": "purpose_not_allowed_at_stage",
		"message": sprintf(
			"purpose %s is not allowed at case stage %s; allowed there: %s",
			[input.request.purpose, input.case.stage, list_or_none(allowed)],
		),
	}
}

# METADATA
# title: Deny any purpose at an unknown stage
# description: A case whose stage is missing or unknown allows no purpose.
deny contains reason if {
	purpose_known
	not stage_known
	reason := {
		"code": "purpose_not_allowed_at_stage",
		"message": "the case's stage is missing or unknown, so no purpose is allowed",
	}
}

# METADATA
# title: List or none
# description: A comma-separated list, or "none" for an empty one.
list_or_none(xs) := "none" if count(xs) == 0

# METADATA
# title: List or none (non-empty)
# description: A comma-separated list of the sorted items.
list_or_none(xs) := concat(", ", sort(xs)) if count(xs) > 0

# ---------------------------------------------------------------------------------------
# Categories

# METADATA
# title: Category known
# description: The category is one of the hub's data categories.
category_known(category) if is_object(config.categories[category])

# METADATA
# title: Category allowed for purpose
# description: The requested purpose may use the category.
category_allowed_for_purpose(category) if {
	category_known(category)
	category in config.purpose_categories[input.request.purpose]
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
# title: Deny an unknown category
# description: >-
#   Every category must be one of the hub's categories. The unknown value is not echoed
#   back, since a caller could put anything there; the message lists the known ones.
deny contains reason if {
	some category in requested_categories
	not category_known(category)
	reason := {
		"code": "unknown_category",
		"message": sprintf(
			"the request names a category the hub does not know; known categories: %s",
			[concat(", ", sort(object.keys(config.categories)))],
		),
	}
}

# METADATA
# title: Deny a category the purpose does not allow
# description: Names the category and the purpose.
deny contains reason if {
	purpose_known
	some category in requested_categories
	category_known(category)
	not category_allowed_for_purpose(category)
	reason := {
		"code": "category_not_allowed_for_purpose",
		"message": sprintf(
			"category %s is not allowed for purpose %s",
			[category, input.request.purpose],
		),
	}
}

# ---------------------------------------------------------------------------------------
# Coverage by consent or grant

# METADATA
# title: Consent coverage
# description: >-
#   One entry per (category, consent) where an active consent, in force now, names the
#   requesting agency as a recipient, the requested purpose and the category.
consent_coverage contains {"category": category, "consent": consent.id} if {
	some consent in input.consents
	consent.state == "active"
	is_string(input.requester.agency)
	input.requester.agency in consent.recipients
	input.request.purpose in consent.purposes
	some category in requested_categories
	category in consent.categories
	timestamp_ns(consent.valid_from) <= now_ns
	consent_open_now(consent)
}

# METADATA
# title: Consent open-ended
# description: A consent with valid_until null has no end.
consent_open_now(consent) if consent.valid_until == null

# METADATA
# title: Consent not yet ended
# description: A consent with an end is in force strictly before it.
consent_open_now(consent) if now_ns < timestamp_ns(consent.valid_until)

# METADATA
# title: Grant coverage
# description: >-
#   One entry per (category, grant) where an active grant for the requesting agency, in
#   force now (not_before <= now < expires_at), names the purpose and the category and
#   carries a legal basis a grant may carry.
grant_coverage contains entry if {
	some grant in input.grants
	grant.state == "active"
	is_string(input.requester.agency)
	grant.agency == input.requester.agency
	input.request.purpose in grant.purposes
	grant.legal_basis in config.grant_legal_bases
	some category in requested_categories
	category in grant.categories
	timestamp_ns(grant.not_before) <= now_ns
	now_ns < timestamp_ns(grant.expires_at)
	entry := {"category": category, "grant": grant.id, "legal_basis": grant.legal_basis}
}

# METADATA
# title: Categories covered by consent
# description: Requested categories that some consent covers.
consent_covered contains entry.category if some entry in consent_coverage

# METADATA
# title: Categories covered by a grant
# description: Requested categories that some grant covers.
grant_covered contains entry.category if some entry in grant_coverage

# METADATA
# title: Covered categories
# description: Requested categories covered by a consent or a grant.
covered_categories := consent_covered | grant_covered

# METADATA
# title: Deny an uncovered category
# description: >-
#   Names the category (never anyone's data). Unknown categories get unknown_category
#   instead.
deny contains reason if {
	some category in requested_categories
	category_known(category)
	not category in covered_categories
	reason := {
		"code": "category_not_covered",
		"message": sprintf(
			"no active consent or grant covers category %s for this agency and purpose now",
			[category],
		),
	}
}

# ---------------------------------------------------------------------------------------
# Legal basis

# METADATA
# title: All covered by consent
# description: Consent covers every requested category.
all_covered_by_consent if {
	count(requested_categories) > 0
	every category in requested_categories {
		category in consent_covered
	}
}

# METADATA
# title: Grant legal basis candidates
# description: >-
#   Legal bases of covering grants such that the categories consent does not cover are
#   all covered by grants with that one basis.
grant_basis_candidates contains basis if {
	some entry in grant_coverage
	basis := entry.legal_basis
	every category in requested_categories - consent_covered {
		some other in grant_coverage
		other.category == category
		other.legal_basis == basis
	}
}

# METADATA
# title: Chosen legal basis (consent)
# description: Consent, when consent covers every requested category.
chosen_legal_basis := "consent" if all_covered_by_consent

# METADATA
# title: Chosen legal basis (grant)
# description: >-
#   Otherwise the covering grants' legal basis; where grants with different bases each
#   cover everything, the first in sorted order, so the answer does not depend on the
#   order of the input.
chosen_legal_basis := sort(grant_basis_candidates)[0] if {
	not all_covered_by_consent
	count(grant_basis_candidates) > 0
}

# METADATA
# title: Deny a request that needs more than one legal basis
# description: >-
#   Every category is covered, but by grants under different legal bases. A disclosure
#   records one legal basis, so the requester must split the request.
deny contains reason if {
	count(requested_categories) > 0
	every category in requested_categories {
		category in covered_categories
	}
	not all_covered_by_consent
	count(grant_basis_candidates) == 0
	reason := {
		"code": "mixed_legal_basis",
		"message": "the categories are covered under different legal bases; request them separately",
	}
}

# METADATA
# title: Coverage reasons from consent
# description: On allow, which consent covers which category.
coverage_reasons contains reason if {
	some entry in consent_coverage
	reason := {
		"code": "covered_by_consent",
		"message": sprintf("consent %v covers category %s", [entry.consent, entry.category]),
	}
}

# METADATA
# title: Coverage reasons from grants
# description: >-
#   On allow, which grant covers each category that consent does not, under the chosen
#   legal basis.
coverage_reasons contains reason if {
	some entry in grant_coverage
	not entry.category in consent_covered
	entry.legal_basis == chosen_legal_basis
	reason := {
		"code": "covered_by_grant",
		"message": sprintf(
			"grant %v covers category %s under %s",
			[entry.grant, entry.category, entry.legal_basis],
		),
	}
}
