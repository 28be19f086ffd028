"""Consent records: what a person agreed to, and whether it holds now. Never imports `hub`."""

from consent.terms import GIVERS, STATES, ConsentTerms, terms

__all__ = ["GIVERS", "STATES", "ConsentTerms", "terms"]  # constants, classes, functions (RUF022)
