"""Alembic environment: always run against the connection `hub.storage.migrate` hands in."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from hub.storage import models  # noqa: F401  (registers the tables)

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
