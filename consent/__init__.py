"""Consent records: what a person (or a parent for a minor) agreed to, its lifecycle, and
whether it holds now. Never imports `hub`."""

from consent.errors import ConsentError, ConsentGiverError, ConsentStateError
from consent.record import (
    PARENTAL_GIVERS,
    Change,
    ConsentRecord,
    check_giver,
    coverage,
    due_to_expire,
)
from consent.terms import GIVERS, STATES, ConsentTerms, terms

__all__ = [
    "GIVERS",
    "PARENTAL_GIVERS",
    "STATES",
    "Change",
    "ConsentError",
    "ConsentGiverError",
    "ConsentRecord",
    "ConsentStateError",
    "ConsentTerms",
    "check_giver",
    "coverage",
    "due_to_expire",
    "terms",
]
