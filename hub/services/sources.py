"""The holding agencies' record systems, reached through their connectors."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

from connectors import Connector, ConnectorConfig, ConnectorError, FetchPool, build_connector
from hub.config import Settings
from hub.services.audit import digest
from hub.storage.models import Agency


class ConnectorRegistry:
    """Builds each agency's connector once and reuses it (connectors hold pools and clients).

    A changed configuration builds a new connector; a configuration that does not parse is
    treated as an unavailable source, never as a reason to fail the whole request. `pool` is
    the process's fan-out, shared by every request: its per-source limit is keyed by agency id.
    """

    def __init__(self, *, pool: FetchPool | None = None) -> None:
        self._lock = threading.Lock()
        self._connectors: dict[str, tuple[str, Connector]] = {}
        self.pool = pool or FetchPool()

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectorRegistry:
        return cls(
            pool=FetchPool(
                max_in_flight=settings.connector_max_in_flight,
                max_threads=settings.connector_max_threads,
            )
        )

    def for_agency(self, agency: Agency) -> Connector | None:
        if not agency.connector_config:
            return None
        version = digest(agency.connector_config)
        with self._lock:
            cached = self._connectors.get(agency.id)
            if cached is not None and cached[0] == version:
                return cached[1]
            try:
                connector = build_connector(
                    ConnectorConfig.from_mapping(
                        agency.connector_config, base_dir=Path.cwd()
                    )  # stored paths are absolute
                )
            except ConnectorError:
                return None
            if cached is not None:
                cached[1].close()
            self._connectors[agency.id] = (version, connector)
            return connector

    def holding(self, agencies: Iterable[Agency]) -> dict[str, Connector]:
        found: dict[str, Connector] = {}
        for agency in agencies:
            connector = self.for_agency(agency)
            if connector is not None:
                found[agency.id] = connector
        return found

    def close(self) -> None:
        self.pool.close()
        with self._lock:
            for _, connector in self._connectors.values():
                connector.close()
            self._connectors.clear()


class StaticConnectors(ConnectorRegistry):
    """Connectors handed in directly, by agency id (tests, embedding)."""

    def __init__(self, connectors: dict[str, Connector], *, pool: FetchPool | None = None) -> None:
        super().__init__(pool=pool)
        self._static = connectors

    def for_agency(self, agency: Agency) -> Connector | None:
        return self._static.get(agency.id)

    def close(self) -> None:
        self.pool.close()
        for connector in self._static.values():
            connector.close()
