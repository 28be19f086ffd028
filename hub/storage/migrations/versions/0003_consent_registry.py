"""consent registry

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 19:02:54.641982
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.storage.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consent_change",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("consent_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("at", hub.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("reason_ciphertext", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["consent_id"],
            ["consent.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("consent_change", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consent_change_consent_id"), ["consent_id"], unique=False
        )

    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(
            sa.Column("relationship", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "method",
                sqlmodel.sql.sqltypes.AutoString(length=32),
                nullable=False,
                server_default="written",
            )
        )
        batch_op.add_column(
            sa.Column(
                "notice_version",
                sqlmodel.sql.sqltypes.AutoString(length=64),
                nullable=False,
                server_default="",
            )
        )
        batch_op.add_column(
            sa.Column(
                "given_at",
                hub.storage.types.UTCDateTime(timezone=True),
                nullable=False,
                server_default=sa.text("CURRENT_TIMESTAMP"),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.drop_column("given_at")
        batch_op.drop_column("notice_version")
        batch_op.drop_column("method")
        batch_op.drop_column("relationship")
        batch_op.drop_column("version")

    with op.batch_alter_table("consent_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_change_consent_id"))

    op.drop_table("consent_change")
