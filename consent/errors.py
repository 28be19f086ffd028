"""Errors of the consent registry.

ConsentError
├── ConsentStateError     the change is not allowed from the record's current state
└── ConsentGiverError     this person may not give consent for this subject
"""

from __future__ import annotations


class ConsentError(Exception):
    """Base of every consent error; messages name the rule, never the person."""


class ConsentStateError(ConsentError):
    pass


class ConsentGiverError(ConsentError):
    pass
