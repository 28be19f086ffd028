"""Everything a running hub holds for its lifetime, built once by `create_app`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine

from hub.config import Settings
from hub.policy import PolicyEngine
from hub.services.sources import ConnectorRegistry
from keys import KeyRing


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class HubState:
    settings: Settings
    engine: Engine
    keyring: KeyRing
    policy: PolicyEngine
    connectors: ConnectorRegistry
    clock: Callable[[], datetime] = field(default=system_clock)

    def close(self) -> None:
        self.policy.close()
        self.connectors.close()
        self.engine.dispose()
