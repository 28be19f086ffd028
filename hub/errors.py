"""Errors the hub's services raise; `hub.api.errors` maps each to one HTTP status.

    HubError
    ├── BadRequest            the request is well-formed JSON but makes no sense
    ├── Unauthenticated       no, expired or forged credentials
    ├── Forbidden             authenticated, but this role may not do this
    ├── NotFound              absent, or not visible to the caller (never confirms existence)
    │   └── SubjectErased     the subject's data key was destroyed (crypto-shredded)
    ├── Conflict              the state does not allow it (e.g. a transition not allowed now)
    ├── PolicyDenied          the policy decision point said no; carries the reasons
    ├── AuditUnavailable      the audit entry could not be made durable; nothing was disclosed
    └── VerificationError     the audit log does not verify

Messages name the failed check, never a person's data.
"""

from __future__ import annotations

from typing import Any


class HubError(Exception):
    code = "error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequest(HubError):
    code = "bad_request"


class Unauthenticated(HubError):
    code = "unauthenticated"


class Forbidden(HubError):
    code = "forbidden"


class NotFound(HubError):
    code = "not_found"


class SubjectErased(NotFound):
    """The subject's data key is gone, so its encrypted values can never be read again.

    A NotFound, so callers see what they would for any absent record.
    """


class Conflict(HubError):
    code = "conflict"


class PolicyDenied(HubError):
    code = "denied"

    def __init__(self, message: str, *, decision_id: str, reasons: list[dict[str, str]]) -> None:
        super().__init__(message, details={"decision_id": decision_id})
        self.decision_id = decision_id
        self.reasons = reasons


class AuditUnavailable(HubError):
    code = "audit_unavailable"


class VerificationError(HubError):
    code = "verification_failed"
