"""The tree in the database: the stored subtree hashes are the RFC 9162 tree over the entries,
and roots and proofs read O(log n) of them in one query."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, event, insert, text
from sqlmodel import Session, col, select

from hub.audit.verifier import (
    GENESIS_HASH,
    chain_hash,
    entry_bytes,
    leaf_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from hub.errors import BadRequest
from hub.services import audit, audit_tree
from hub.storage.db import make_engine
from hub.storage.migrate import _config, upgrade
from hub.storage.models import AuditEntry, AuditNode

from .conftest import T0, append_entries


def _leaves(session: Session) -> list[bytes]:
    rows = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all()
    return [leaf_hash(audit.entry_data(row)) for row in rows]


@contextmanager
def _count_queries(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_appends_build_the_rfc9162_tree_and_the_chain(engine: Engine) -> None:
    append_entries(engine, 37, per_commit=5)
    with Session(engine) as session:
        leaves = _leaves(session)
        assert len(leaves) == 37 == audit_tree.size(session)
        for size in range(1, 38):
            assert audit_tree.root_at(session, size) == root_hash(leaves[:size])
        node_count = session.execute(text("SELECT count(*) FROM audit_node")).scalar_one()
        assert node_count == sum(
            len(bin(i + 1)) - len(bin(i + 1).rstrip("0")) + 1 for i in range(37)
        )
        report = audit.verify(session=session)
    assert report.entries == 37
    assert report.root_hash == root_hash(leaves).hex()


def test_every_proof_from_the_database_verifies(engine: Engine) -> None:
    append_entries(engine, 21, per_commit=21)
    with Session(engine) as session:
        leaves = _leaves(session)
        for size in range(1, 22):
            root = audit_tree.root_at(session, size)
            for index in range(size):
                proof = audit_tree.inclusion_proof(session, index=index, tree_size=size)
                verify_inclusion(
                    index=index, tree_size=size, leaf=leaves[index], proof=proof, root=root
                )
            for first in range(size + 1):
                verify_consistency(
                    first=first,
                    second=size,
                    first_root=audit_tree.root_at(session, first),
                    second_root=root,
                    proof=audit_tree.consistency_proof(session, first=first, second=size),
                )


def test_a_proof_is_one_query_reading_logarithmically_many_rows(engine: Engine) -> None:
    append_entries(engine, 300, per_commit=100)
    with Session(engine) as session, _count_queries(engine) as statements:
        session.connection()  # the transaction's own statements are not the proof's
        statements.clear()
        proof = audit_tree.inclusion_proof(session, index=137, tree_size=300)
        # One statement reads the nodes and, with them, the log's size to check the request.
        assert len(statements) == 1
        assert "audit_node" in statements[0]
        assert "audit_head" in statements[0]
        assert len(proof) <= 9
        statements.clear()
        audit_tree.consistency_proof(session, first=137, second=300)
        assert len(statements) == 1
        assert "audit_node" in statements[0]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: audit_tree.inclusion_proof(s, index=5, tree_size=5), "between 0 and 4, got 5"),
        (lambda s: audit_tree.inclusion_proof(s, index=0, tree_size=9), "between 0 and 8 .*got 9"),
        (lambda s: audit_tree.consistency_proof(s, first=6, second=5), "between 0 and 5, got 6"),
        (lambda s: audit_tree.root_at(s, 9), "the log's size"),
        (lambda s: audit_tree.leaf_at(s, 8), "no leaf 8"),
    ],
    ids=["index-too-big", "size-too-big", "first-after-second", "root-too-big", "no-leaf"],
)
def test_impossible_proofs_are_bad_requests(engine: Engine, call: Any, message: str) -> None:
    append_entries(engine, 8, per_commit=8)
    with Session(engine) as session, pytest.raises(BadRequest, match=message):
        call(session)


def test_appends_continue_across_sessions(engine: Engine) -> None:
    append_entries(engine, 3)
    append_entries(engine, 3)
    with Session(engine) as session:
        rows = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all()
        assert [r.seq for r in rows] == [1, 2, 3, 4, 5, 6]
        assert audit.verify(session=session).entries == 6


def test_migration_builds_the_tree_over_entries_logged_before_it(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            command.upgrade(_config(connection), "0001")
        prev, rows = GENESIS_HASH, []
        for seq in range(1, 12):
            at = T0.replace(microsecond=seq)
            body = f'{{"decision":"allow","n":{seq}}}'
            data = entry_bytes(seq=seq, kind="disclosure", at=audit.rfc3339(at), body=body)
            entry_hash = chain_hash(prev_hash=prev, entry=data)
            rows.append(
                {
                    "seq": seq,
                    "at": at,
                    "kind": "disclosure",
                    "body": body,
                    "prev_hash": prev,
                    "entry_hash": entry_hash,
                }
            )
            prev = entry_hash
        with engine.begin() as connection:
            connection.execute(insert(AuditEntry), rows)

        upgrade(engine)

        with Session(engine) as session:
            assert audit_tree.size(session) == 11
            assert audit.verify(session=session).head_hash == prev
        append_entries(engine, 2)
        with Session(engine) as session:
            assert audit.verify(session=session).entries == 13
            assert session.get(AuditNode, (0, 12)) is not None
    finally:
        engine.dispose()
