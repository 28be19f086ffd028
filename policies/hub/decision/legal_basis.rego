# METADATA
# title: Legal basis
# description: >-
#   What covers each requested category on the ordinary (not break-glass) path, and the
#   one legal basis the decision records. A category is covered by: a consent (active,
#   naming the requesting agency, the purpose and the category, in force now, given by a
#   parent or guardian when the subject is under the profile's age of consent or of
#   unknown age, and explicit for a special category); a coordinator's grant (active, for
#   the requesting agency, the purpose and the category, in force now, under a basis a
#   grant may carry); or one of the profile's own legal bases (public_task or
#   legal_obligation) that names the case's stage, the purpose and the category. Grants
#   and the profile's bases never cover a special category. vital_interests comes only
#   from break-glass.
#
#   Precedence: a disclosure records exactly one legal basis, and it must cover every
#   requested category. Of the bases that each cover all of them, the first in
#   data.hub.config.legal_basis_precedence is chosen: consent (what the subject, or a
#   parent, agreed to for this very recipient and purpose), then legal_obligation (a duty
#   leaves no discretion), then public_task. When every category is covered but no one
#   basis covers them all, the request is denied with mixed_legal_basis and must be split.
package hub.decision

# ---------------------------------------------------------------------------------------
# Consent

# METADATA
# title: Live consents
# description: >-
#   Indexes of the consents that are active, name the requesting agency as a recipient and
#   the requested purpose, and are in force now (valid_from <= now < valid_until). Who
#   gave them and which categories they name are checked separately.
live_consents contains i if {
	some i, consent in input.consents
	consent.state == "active"
	requester_agency in consent.recipients
	input.request.purpose in consent.purposes
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
# title: Subject of age
# description: >-
#   The subject's age is known and at least the profile's age of consent. An unknown age
#   (null or missing) is treated as a minor's: the safer reading.
subject_of_age if {
	is_number(input.case.subject_age)
	input.case.subject_age >= profile.age_of_consent
}

# METADATA
# title: Consent giver counts (subject of age)
# description: A subject of age may consent; the giver must still be recorded.
consent_giver_counts(consent) if {
	is_string(consent.given_by)
	subject_of_age
}

# METADATA
# title: Consent giver counts (parent or guardian)
# description: >-
#   For a subject under the age of consent, or of unknown age, only a parent's or a
#   guardian's consent counts.
consent_giver_counts(consent) if consent_from_parent(consent)

# METADATA
# title: Consent from a parent or guardian
# description: The consent was given by a parent or a guardian.
consent_from_parent(consent) if consent.given_by in config.minor_consent_givers

# METADATA
# title: Consent coverage (ordinary categories)
# description: A live consent whose giver counts covers the ordinary categories it names.
coverage contains entry if {
	some i in live_consents
	consent := input.consents[i]
	consent_giver_counts(consent)
	some category in consent.categories
	category in ordinary_categories
	entry := [category, "consent", "consent", i]
}

# METADATA
# title: Consent coverage (special categories)
# description: Only an explicit live consent whose giver counts covers a special category.
coverage contains entry if {
	some i in live_consents
	consent := input.consents[i]
	consent.explicit == true
	consent_giver_counts(consent)
	some category in consent.categories
	category in special_categories
	entry := [category, "consent", "consent", i]
}

# ---------------------------------------------------------------------------------------
# Grants

# METADATA
# title: Live grants
# description: >-
#   Indexes of the grants that are active, for the requesting agency and the requested
#   purpose, carry a legal basis a grant may carry, and are in force now
#   (not_before <= now < expires_at).
live_grants contains i if {
	some i, grant in input.grants
	grant.state == "active"
	grant.agency == requester_agency
	input.request.purpose in grant.purposes
	grant.legal_basis in config.grant_legal_bases
	timestamp_ns(grant.not_before) <= now_ns
	now_ns < timestamp_ns(grant.expires_at)
}

# METADATA
# title: Grant coverage
# description: A live grant covers the ordinary categories it names, never a special one.
coverage contains entry if {
	some i in live_grants
	grant := input.grants[i]
	some category in grant.categories
	category in ordinary_categories
	entry := [category, grant.legal_basis, "grant", i]
}

# ---------------------------------------------------------------------------------------
# The profile's own legal bases

# METADATA
# title: Profile coverage
# description: >-
#   One of the profile's legal bases (public_task or legal_obligation) covers the
#   ordinary categories it names, where it names the case's stage and the purpose.
coverage contains entry if {
	some name, term in profile.legal_bases
	term.basis in config.profile_legal_bases
	input.case.stage in term.stages
	input.request.purpose in term.purposes
	some category in term.categories
	category in ordinary_categories
	entry := [category, term.basis, "profile", name]
}

# ---------------------------------------------------------------------------------------
# Choosing the one legal basis

# METADATA
# title: Covered categories
# description: >-
#   Requested categories that something covers. Coverage entries are
#   [category, legal basis, source, reference] with source consent, grant or profile.
covered_categories contains entry[0] if some entry in coverage

# METADATA
# title: Bases covering every category
# description: >-
#   The legal bases of data.hub.config.legal_basis_precedence that on their own cover
#   every requested category (coverage only ever holds requested categories, so counting
#   them is enough). Only the bases some entry names are tried: a basis nothing names
#   covers nothing.
full_bases contains basis if {
	count(requested_categories) > 0
	some basis in {entry[1] | some entry in coverage}
	basis in config.legal_basis_precedence
	count({entry[0] | some entry in coverage; entry[1] == basis}) == count(requested_categories)
}

# METADATA
# title: Chosen legal basis (ordinary)
# description: >-
#   The first basis in data.hub.config.legal_basis_precedence that covers every requested
#   category on its own.
chosen_legal_basis := basis if {
	ordinary_request
	candidates := [b | some b in config.legal_basis_precedence; b in full_bases]
	count(candidates) > 0
	basis := candidates[0]
}

# METADATA
# title: Chosen legal basis (break-glass)
# description: An allowed break-glass request rests on vital interests.
chosen_legal_basis := config.break_glass.legal_basis if break_glass_permitted

# ---------------------------------------------------------------------------------------
# Deny reasons

# METADATA
# title: Deny an uncovered category
# description: >-
#   Names the category (never anyone's data). Unknown categories get unknown_category
#   instead.
deny contains reason if {
	not break_glass_requested
	some category in known_categories - covered_categories
	reason := {
		"code": "category_not_covered",
		"message": sprintf(
			"no consent, grant or legal basis of the panel covers category %s for this agency and purpose now",
			[category],
		),
	}
}

# METADATA
# title: Deny an uncovered special category
# description: >-
#   Added to category_not_covered: a special category (health) is covered only by an
#   explicit consent, or by vital interests through break-glass; never by a grant or the
#   profile's public task.
deny contains reason if {
	not break_glass_requested
	some category in special_categories - covered_categories
	reason := {
		"code": "special_category_needs_explicit_consent",
		"message": sprintf(
			"category %s is a special category: only an explicit consent, or break-glass in an emergency, covers it",
			[category],
		),
	}
}

# METADATA
# title: Deny a minor's consent not given by a parent or guardian
# description: >-
#   Added to category_not_covered where a live consent names the category but was not
#   given by a parent or guardian, and the subject is under the profile's age of consent
#   or of unknown age. The subject's age is not stated.
deny contains reason if {
	not break_glass_requested
	not subject_of_age
	some category in known_categories - covered_categories
	some i in live_consents
	category in input.consents[i].categories
	not consent_from_parent(input.consents[i])
	reason := {
		"code": "minor_consent_not_from_parent",
		"message": sprintf(
			"a consent names category %s but counts only if a parent or guardian gave it, since the subject is under this profile's age of consent or of unknown age",
			[category],
		),
	}
}

# METADATA
# title: Deny a request that needs more than one legal basis
# description: >-
#   Every category is covered, but no one legal basis covers them all. A disclosure
#   records one legal basis, so the requester must split the request.
deny contains reason if {
	not break_glass_requested
	count(requested_categories) > 0
	count(requested_categories - covered_categories) == 0
	count(full_bases) == 0
	reason := {
		"code": "mixed_legal_basis",
		"message": "the categories are covered under different legal bases; request them separately",
	}
}

# ---------------------------------------------------------------------------------------
# Reasons on allow

# METADATA
# title: Coverage reasons (consent)
# description: On an ordinary allow under consent, which consent covers which category.
allow_reasons contains reason if {
	ordinary_request
	chosen_legal_basis == "consent"
	some entry in coverage
	entry[2] == "consent"
	reason := {
		"code": "covered_by_consent",
		"message": sprintf("consent %v covers category %s", [input.consents[entry[3]].id, entry[0]]),
	}
}

# METADATA
# title: Coverage reasons (grant)
# description: On an ordinary allow, which grant covers which category under the chosen basis.
allow_reasons contains reason if {
	ordinary_request
	some entry in coverage
	entry[2] == "grant"
	entry[1] == chosen_legal_basis
	reason := {
		"code": "covered_by_grant",
		"message": sprintf(
			"grant %v covers category %s under %s",
			[input.grants[entry[3]].id, entry[0], entry[1]],
		),
	}
}

# METADATA
# title: Coverage reasons (profile)
# description: >-
#   On an ordinary allow, which of the profile's legal bases covers which category under
#   the chosen basis.
allow_reasons contains reason if {
	ordinary_request
	some entry in coverage
	entry[2] == "profile"
	entry[1] == chosen_legal_basis
	reason := {
		"code": "covered_by_profile",
		"message": sprintf(
			"the panel profile's %s term covers category %s under %s",
			[entry[3], entry[0], entry[1]],
		),
	}
}
