"""keys: per-subject data keys, key rotation progress, field indexes, possible matches,
re-identification requests

Revision ID: 0005_keys
Revises: 0004
Create Date: 2026-11-28 19:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.storage.types

revision: str = "0005_keys"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subject_key",
        sa.Column("subject_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("wrapped_key", sa.Text(), nullable=False),
        sa.Column("kek_kid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", hub.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["subject_id"], ["subject.id"]),
        sa.PrimaryKeyConstraint("subject_id"),
    )
    op.create_index(op.f("ix_subject_key_kek_kid"), "subject_key", ["kek_kid"], unique=False)
    op.create_table(
        "key_rotation",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("target_kid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("batches", sa.Integer(), nullable=False),
        sa.Column("started_at", hub.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", hub.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_key_rotation_purpose"), "key_rotation", ["purpose"], unique=False)
    op.create_table(
        "subject_field_index",
        sa.Column("subject_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("given_name_index", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column(
            "family_name_index", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False
        ),
        sa.Column(
            "date_of_birth_index", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False
        ),
        sa.ForeignKeyConstraint(["subject_id"], ["subject.id"]),
        sa.PrimaryKeyConstraint("subject_id"),
    )
    for column in ("given_name_index", "family_name_index", "date_of_birth_index"):
        op.create_index(
            op.f(f"ix_subject_field_index_{column}"), "subject_field_index", [column], unique=False
        )
    op.create_table(
        "possible_match",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column(
            "candidate_subject_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False
        ),
        sa.Column("differing_field", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", hub.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["candidate_subject_id"], ["subject.id"]),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_possible_match_case_id"), "possible_match", ["case_id"], unique=False)
    op.create_table(
        "reidentification_request",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("requested_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("reason_code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("reason_ciphertext", sa.Text(), nullable=False),
        sa.Column("approvals", sa.JSON(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", hub.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", hub.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_reidentification_request_case_id"),
        "reidentification_request",
        ["case_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_reidentification_request_case_id"), table_name="reidentification_request"
    )
    op.drop_table("reidentification_request")
    op.drop_index(op.f("ix_possible_match_case_id"), table_name="possible_match")
    op.drop_table("possible_match")
    for column in ("given_name_index", "family_name_index", "date_of_birth_index"):
        op.drop_index(op.f(f"ix_subject_field_index_{column}"), table_name="subject_field_index")
    op.drop_table("subject_field_index")
    op.drop_index(op.f("ix_key_rotation_purpose"), table_name="key_rotation")
    op.drop_table("key_rotation")
    op.drop_index(op.f("ix_subject_key_kek_kid"), table_name="subject_key")
    op.drop_table("subject_key")
