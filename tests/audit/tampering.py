"""What a malicious operator with database access does to the audit log, for the tests.

First the append-only triggers go (the database refuses UPDATE and DELETE on the log tables
while they exist); then rows are edited, deleted, inserted or rewritten directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Engine, text

# A statement, or a statement with bound parameters (for values holding ":" or quotes).
Statement = str | tuple[str, dict[str, Any]]

LOG_TABLES = ("audit_entry", "audit_node", "audit_checkpoint")


def append_only_triggers(conn: Connection) -> list[tuple[str, str]]:
    """(trigger, table) for every trigger on the log tables, read from the catalogue."""
    if conn.dialect.name == "postgresql":
        rows = conn.execute(
            text(
                "SELECT t.tgname, c.relname FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE NOT t.tgisinternal AND n.nspname = current_schema() "
                "AND c.relname IN ('audit_entry', 'audit_node', 'audit_checkpoint')"
            )
        )
    else:
        rows = conn.execute(
            text(
                "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name IN ('audit_entry', 'audit_node', 'audit_checkpoint')"
            )
        )
    return [(str(name), str(table)) for name, table in rows]


def drop_append_only_triggers(conn: Connection) -> None:
    for name, table in append_only_triggers(conn):
        if conn.dialect.name == "postgresql":
            conn.execute(text(f'DROP TRIGGER "{name}" ON "{table}"'))
        else:
            conn.execute(text(f'DROP TRIGGER "{name}"'))


def tamper(engine: Engine, statements: Iterable[Statement] | str) -> None:
    """Drop the triggers, then run `statements` (a string is split on ";") in one transaction."""
    if isinstance(statements, str):
        statements = [s for s in statements.split(";") if s.strip()]
    with engine.begin() as conn:
        drop_append_only_triggers(conn)
        for statement in statements:
            sql, params = (statement, {}) if isinstance(statement, str) else statement
            conn.execute(text(sql), params)


def rewrite_history(engine: Engine, *, seq: int, old: str, new: str) -> None:
    """Change entry `seq`'s body and recompute everything after it — the chain, every tree
    node and the cursor — with the log's own public algorithms, as a careful operator would.
    Only signed checkpoints (stored, or held by others) can then tell."""
    from sqlmodel import Session, col, select

    from hub.audit import merkle
    from hub.audit.verifier import GENESIS_HASH, chain_hash, leaf_hash
    from hub.services import audit
    from hub.storage.models import AuditEntry

    with Session(engine) as session:
        entries = list(session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all())
    prev = GENESIS_HASH
    statements: list[Statement] = []
    nodes: dict[merkle.NodeId, bytes] = {}
    for entry in entries:
        if entry.seq == seq:
            assert old in entry.body
            entry.body = entry.body.replace(old, new)
        entry.prev_hash = prev
        data = audit.entry_data(entry)
        entry.entry_hash = chain_hash(prev_hash=prev, entry=data)
        prev = entry.entry_hash
        nodes.update(merkle.hash_completed(entry.seq - 1, leaf_hash(data), nodes))
        if entry.seq >= seq:
            statements.append(
                (
                    "UPDATE audit_entry SET body = :body, prev_hash = :prev, entry_hash = :hash "
                    "WHERE seq = :seq",
                    {
                        "body": entry.body,
                        "prev": entry.prev_hash,
                        "hash": entry.entry_hash,
                        "seq": entry.seq,
                    },
                )
            )
    statements.append("DELETE FROM audit_node")
    statements += [
        f"INSERT INTO audit_node (level, idx, digest, complete_at) VALUES "
        f"({node.level}, {node.idx}, '{digest.hex()}', {node.complete_at})"
        for node, digest in nodes.items()
    ]
    statements.append(f"UPDATE audit_head SET chain_hash = '{prev}'")
    tamper(engine, statements)
