"""The migrations build exactly the schema the models declare, on every backend, and running
them twice changes nothing."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text
from sqlmodel import Session

from hub.services import reindex
from hub.storage import migrate
from hub.storage.db import make_engine
from hub.storage.migrate import differences, upgrade
from hub.storage.models import Subject


def test_migrations_match_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        upgrade(engine)  # a second run is a no-op
        assert differences(engine) == []
        assert "audit_entry" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_subjects_indexed_before_0011_count_as_under_the_first_blind_index_key(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            command.upgrade(migrate._config(connection), "0010")
            connection.execute(
                text(
                    "INSERT INTO subject (id, identity_ciphertext, identity_index, created_at) "
                    "VALUES ('s-1', 'sk1.x', 'index', CURRENT_TIMESTAMP)"
                )
            )
        upgrade(engine)
        with Session(engine) as session:
            subject = session.get(Subject, "s-1")
            assert subject is not None and subject.blind_index_version is None
            # Only "v1" existed then: a rotation re-indexes them, and "v1" is not retired before.
            assert reindex.still_under(session=session, version="v1") == 1
            assert reindex.still_under(session=session, version="v2") == 0
    finally:
        engine.dispose()
