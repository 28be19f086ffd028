"""Who is calling: an agency system or a person."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

AGENCY_SYSTEM = "agency_system"
COORDINATOR = "coordinator"
DPO = "dpo"
ADMIN = "admin"
USER_ROLES = (COORDINATOR, DPO, ADMIN)


@dataclass(frozen=True)
class Principal:
    kind: Literal["agency", "user"]
    subject: str  # client id or username
    roles: tuple[str, ...]
    agency_id: str | None = None
    panel_id: str | None = None
    panels: tuple[str, ...] = field(default=())

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"{self.kind}:{self.subject}"

    def has_role(self, role: str) -> bool:
        return role in self.roles
