"""The database refuses UPDATE and DELETE (and, on PostgreSQL, TRUNCATE) of the log's rows
through normal access; the append cursor stays writable."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from hub.services import audit
from tests.audit.tampering import LOG_TABLES, append_only_triggers

from .conftest import T0, append_entries

CHANGES = {
    "audit_entry": ("UPDATE audit_entry SET kind = 'x' WHERE seq = 1", "DELETE FROM audit_entry"),
    "audit_node": ("UPDATE audit_node SET digest = 'x' WHERE level = 0", "DELETE FROM audit_node"),
    "audit_checkpoint": (
        "UPDATE audit_checkpoint SET note = 'x'",
        "DELETE FROM audit_checkpoint",
    ),
}


@pytest.fixture
def logged(engine: Engine, signer: object) -> Engine:
    from sqlmodel import Session

    from hub.audit.notes import CheckpointSigner
    from hub.services import audit_checkpoints

    assert isinstance(signer, CheckpointSigner)
    append_entries(engine, 4)
    with Session(engine) as session:
        audit_checkpoints.checkpoint_now(session=session, signer=signer, now=T0)
    return engine


@pytest.mark.parametrize("table", LOG_TABLES)
@pytest.mark.parametrize("action", ["update", "delete"])
def test_log_rows_cannot_be_changed(logged: Engine, table: str, action: str) -> None:
    statement = CHANGES[table][0 if action == "update" else 1]
    refused = f"{table} is append-only: {action.upper()} refused"
    with pytest.raises(DBAPIError, match=refused), logged.begin() as conn:
        conn.execute(text(statement))
    with logged.connect() as conn:
        assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() > 0


@pytest.mark.parametrize("table", LOG_TABLES)
def test_emptying_a_table_at_once_is_refused(logged: Engine, table: str) -> None:
    # PostgreSQL's TRUNCATE bypasses row triggers, so it has its own; SQLite has no TRUNCATE,
    # and its truncate optimisation (DELETE without WHERE) is off while a DELETE trigger exists.
    postgres = logged.dialect.name == "postgresql"
    statement = f"TRUNCATE {table}" if postgres else f"DELETE FROM {table}"
    refused = "TRUNCATE refused" if postgres else "DELETE refused"
    with pytest.raises(DBAPIError, match=refused), logged.begin() as conn:
        conn.execute(text(statement))


def test_every_log_table_has_its_triggers(logged: Engine) -> None:
    with logged.connect() as conn:
        tables = {table for _, table in append_only_triggers(conn)}
    assert tables == set(LOG_TABLES)


def test_appending_still_works_under_the_triggers(logged: Engine) -> None:
    append_entries(logged, 3)
    from sqlmodel import Session

    with Session(logged) as session:
        assert audit.verify(session=session).entries == 7
