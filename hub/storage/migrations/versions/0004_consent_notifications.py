"""consent notifications

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 19:06:38.425344
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.storage.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agency_webhook",
        sa.Column("agency_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("secret_ciphertext", sa.Text(), nullable=False),
        sa.Column("updated_at", hub.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agency.id"],
        ),
        sa.PrimaryKeyConstraint("agency_id"),
    )
    op.create_table(
        "consent_notification",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("consent_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("agency_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("event", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", hub.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", hub.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", hub.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", hub.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agency.id"],
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["case.id"],
        ),
        sa.ForeignKeyConstraint(
            ["consent_id"],
            ["consent.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("consent_id", "agency_id", "event"),
    )
    with op.batch_alter_table("consent_notification", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consent_notification_case_id"), ["case_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_consent_notification_status"), ["status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("consent_notification", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_notification_status"))
        batch_op.drop_index(batch_op.f("ix_consent_notification_case_id"))

    op.drop_table("consent_notification")
    op.drop_table("agency_webhook")
