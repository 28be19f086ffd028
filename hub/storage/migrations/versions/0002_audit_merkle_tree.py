"""audit log: Merkle tree nodes, checkpoints, append cursor; append-only triggers

Adds `audit_node` (every complete subtree hash of the RFC 9162 tree over `audit_entry`),
`audit_checkpoint` (signed checkpoints, all kept) and `audit_head` (the append cursor), fills
the tree and the cursor from the entries already logged, and makes the three log tables
append-only: triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 18:31:14.780984
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC
from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.storage.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOG_TABLES = ("audit_entry", "audit_node", "audit_checkpoint")
GENESIS_HASH = "0" * 64
_BATCH = 5000


def upgrade() -> None:
    op.create_table(
        "audit_checkpoint",
        sa.Column("tree_size", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("root_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("made_at", hub.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tree_size"),
    )
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("chain_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "audit_node",
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("complete_at", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx"),
    )
    with op.batch_alter_table("audit_node", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_node_complete_at"), ["complete_at"], unique=False
        )

    _build_tree_from_existing_entries()
    _create_append_only_triggers()


def downgrade() -> None:
    _drop_append_only_triggers()
    with op.batch_alter_table("audit_node", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_node_complete_at"))
    op.drop_table("audit_node")
    op.drop_table("audit_head")
    op.drop_table("audit_checkpoint")


def _entry_bytes(row: Any) -> bytes:
    # A frozen copy of the entry encoding (hub.audit.verifier.entry_bytes at this revision):
    # a migration must compute the same leaves however the code changes later.
    at = row.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    document = {"at": at, "body": row.body, "kind": row.kind, "seq": row.seq}
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _build_tree_from_existing_entries() -> None:
    """Hash every entry already logged into the tree and point the cursor after the last."""
    bind = op.get_bind()
    entries = sa.table(
        "audit_entry",
        sa.column("seq", sa.Integer()),
        sa.column("at", hub.storage.types.UTCDateTime(timezone=True)),
        sa.column("kind", sa.String()),
        sa.column("body", sa.Text()),
        sa.column("entry_hash", sa.String()),
    )
    nodes = sa.table(
        "audit_node",
        sa.column("level", sa.Integer()),
        sa.column("idx", sa.Integer()),
        sa.column("digest", sa.String()),
        sa.column("complete_at", sa.Integer()),
    )
    stack: list[tuple[int, bytes]] = []  # (level, hash) of the perfect subtrees, largest first
    pending: list[dict[str, Any]] = []
    size, chain = 0, GENESIS_HASH
    for row in bind.execute(sa.select(entries).order_by(entries.c.seq)):
        if row.seq != size + 1:
            raise RuntimeError(
                f"audit_entry has no entry {size + 1} (next is {row.seq}): the log was damaged "
                "before this upgrade; run `hub audit verify` with the previous version"
            )
        size += 1
        level, digest = 0, hashlib.sha256(b"\x00" + _entry_bytes(row)).digest()
        pending.append({"level": 0, "idx": size - 1, "digest": digest.hex(), "complete_at": size})
        while stack and stack[-1][0] == level:
            _, left = stack.pop()
            level, digest = level + 1, hashlib.sha256(b"\x01" + left + digest).digest()
            pending.append(
                {
                    "level": level,
                    "idx": (size >> level) - 1,
                    "digest": digest.hex(),
                    "complete_at": size,
                }
            )
        stack.append((level, digest))
        chain = row.entry_hash
        if len(pending) >= _BATCH:
            bind.execute(sa.insert(nodes), pending)
            pending = []
    if pending:
        bind.execute(sa.insert(nodes), pending)
    head = sa.table(
        "audit_head",
        sa.column("id", sa.Integer()),
        sa.column("size", sa.Integer()),
        sa.column("chain_hash", sa.String()),
    )
    bind.execute(sa.insert(head), [{"id": 1, "size": size, "chain_hash": chain}])


def _create_append_only_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                    USING ERRCODE = 'insufficient_privilege';
            END
            $$
            """
        )
        for table in LOG_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
            )
        return
    for table in LOG_TABLES:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_refuse_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {action} refused'); END"
            )


def _drop_append_only_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in LOG_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS audit_refuse_change()")
        return
    for table in LOG_TABLES:
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_refuse_{action}")
