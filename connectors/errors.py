"""Errors raised by connectors.

::

    ConnectorError              code "error" unless given another, e.g. "bad_response"
    ├── ConnectorTimeout        code "timeout": the source took longer than its timeout
    ├── ConnectorUnavailable    code "unavailable": the source refused, failed or answered non-2xx
    └── ConnectorConfigError    code "misconfigured": a connector config is invalid

Every error carries a short machine ``code`` that callers may show or store. Messages name the
check that failed and never carry a person's data or a local id, because they end up in logs and in
the hub's answers to other agencies.
"""

from __future__ import annotations

from typing import ClassVar


class ConnectorError(Exception):
    """A source could not be asked, or its answer could not be used."""

    default_code: ClassVar[str] = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code: str = code or self.default_code


class ConnectorTimeout(ConnectorError):
    """The source did not connect or answer within its timeout."""

    default_code = "timeout"


class ConnectorUnavailable(ConnectorError):
    """The source refused the connection or the request, or failed while answering."""

    default_code = "unavailable"


class ConnectorConfigError(ConnectorError):
    """A connector configuration is invalid; the message names the offending key."""

    default_code = "misconfigured"
