"""key retirement: subjects record the normaliser version of their blind indexes, so
`hub keys reindex` finds those indexed under an older one

Revision ID: 0008_key_retirement
Revises: 0007
Create Date: 2026-11-28 21:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008_key_retirement"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows already there get NULL: indexed before versions were recorded, so re-indexed.
    with op.batch_alter_table("subject") as batch_op:
        batch_op.add_column(
            sa.Column("index_version", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("subject") as batch_op:
        batch_op.drop_column("index_version")
