"""Join the key-retirement and web-session branches, made in parallel from 0007, into one head.

Revision ID: 0010
Revises: 0008_key_retirement, 0009_web_sessions
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0010"
down_revision: str | Sequence[str] | None = ("0008_key_retirement", "0009_web_sessions")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
