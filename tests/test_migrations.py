"""The migrations build exactly the schema the models declare, on every backend, and running
them twice changes nothing."""

from __future__ import annotations

from sqlalchemy import inspect

from hub.storage.db import make_engine
from hub.storage.migrate import differences, upgrade


def test_migrations_match_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        upgrade(engine)  # a second run is a no-op
        assert differences(engine) == []
        assert "audit_entry" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
