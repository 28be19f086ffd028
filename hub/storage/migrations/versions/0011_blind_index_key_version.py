"""subjects record the blind-index key version their indexes were made under, so
`hub keys rotate blind-index` re-indexes only those under an older key, and resumes

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 00:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows already there get NULL: indexed before versions were recorded, under "v1", the only
    # blind-index key there could be until it became rotatable.
    with op.batch_alter_table("subject") as batch_op:
        batch_op.add_column(
            sa.Column(
                "blind_index_version", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("subject") as batch_op:
        batch_op.drop_column("blind_index_version")
