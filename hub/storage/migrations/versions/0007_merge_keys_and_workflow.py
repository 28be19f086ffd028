"""Join the keys and workflow branches, made in parallel from 0004, into one head.

Revision ID: 0007
Revises: 0005_keys, 0006_workflow
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0007"
down_revision: str | Sequence[str] | None = ("0005_keys", "0006_workflow")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
