"""Engine and session creation. Nothing here runs at import time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event
from sqlmodel import Session, create_engine

from hub.storage import models  # noqa: F401  (registers the tables on SQLModel.metadata)

# SQLite has no "wait for ever": a busy timeout of 0 means "do not wait at all".
_SQLITE_NO_LIMIT = 24 * 3600.0


def make_engine(url: str, *, statement_timeout: float = 10.0, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL and a busy timeout.

    `statement_timeout` (seconds, 0 for none) bounds how long one statement may run or wait
    for a lock: SQLite's busy timeout, PostgreSQL's `statement_timeout` and `lock_timeout`.
    A request stuck behind a lock then fails (503, nothing disclosed) instead of hanging.
    """
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={
                "check_same_thread": False,
                "timeout": statement_timeout or _SQLITE_NO_LIMIT,
            },
            **kwargs,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

        return engine
    engine = create_engine(url, pool_pre_ping=True, **kwargs)
    milliseconds = round(statement_timeout * 1000)

    @event.listens_for(engine, "connect")
    def _postgres_timeouts(dbapi_connection: Any, _record: Any) -> None:
        # Set once per connection, outside any transaction a rollback could undo.
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET statement_timeout = {milliseconds}")
            cursor.execute(f"SET lock_timeout = {milliseconds}")
        dbapi_connection.commit()

    return engine


def create_schema(engine: Engine) -> None:
    """Bring the database to the newest schema through the Alembic migrations."""
    from hub.storage.migrate import upgrade

    upgrade(engine)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session committed on success and rolled back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
