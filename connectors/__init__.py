"""Adapters to agency record systems, and the mapping from their columns to data categories.

A connector has one job: ``fetch(SourceQuery) -> RecordSet`` for one person's local id, limited
to the categories asked for, with only mapped columns and with third parties redacted. Build one
from an agency's TOML file with ``build_connector(load_connector_config(path))``, and ask several
at once, each under a deadline, with :func:`fetch_all` (through a shared :class:`FetchPool`, which
bounds the fetches in flight at each source and the threads of the whole process). This package
never imports ``hub``.
"""

from __future__ import annotations

from connectors.config import CategoryRule, ConnectorConfig, load_connector_config
from connectors.errors import (
    ConnectorConfigError,
    ConnectorError,
    ConnectorTimeout,
    ConnectorUnavailable,
)
from connectors.fake import FakeConnector
from connectors.fanout import FetchPool, SourceResult, fetch_all
from connectors.models import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    Connector,
    Record,
    RecordSet,
    SourceQuery,
    Timeout,
)
from connectors.rest import RestConnector
from connectors.sql import SqlConnector

# Every connector kind, by the name used in ``[source] kind``. Each class offers from_config().
CONNECTORS: dict[str, type[SqlConnector] | type[RestConnector]] = {
    "sql": SqlConnector,
    "rest": RestConnector,
}


def build_connector(config: ConnectorConfig) -> Connector:
    """Create the connector ``config.kind`` names; it connects only when first used.

    Raises:
        ConnectorConfigError: if the kind is unknown or the settings are invalid for it.
    """
    factory = CONNECTORS.get(config.kind)
    if factory is None:
        raise ConnectorConfigError(
            f"source.kind {config.kind!r} is unknown; expected one of {sorted(CONNECTORS)}"
        )
    return factory.from_config(config)


__all__ = [
    "CONNECTORS",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "CategoryRule",
    "Connector",
    "ConnectorConfig",
    "ConnectorConfigError",
    "ConnectorError",
    "ConnectorTimeout",
    "ConnectorUnavailable",
    "FakeConnector",
    "FetchPool",
    "Record",
    "RecordSet",
    "RestConnector",
    "SourceQuery",
    "SourceResult",
    "SqlConnector",
    "Timeout",
    "build_connector",
    "fetch_all",
    "load_connector_config",
]
