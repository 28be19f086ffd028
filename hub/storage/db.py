"""Engine and session creation. Nothing here connects at import time (the one thing done on
import is to register the guard that refuses writes inside `reads_only`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import UOWTransaction
from sqlmodel import Session, create_engine

from hub.storage import models  # noqa: F401  (registers the tables on SQLModel.metadata)

# SQLite has no "wait for ever": a busy timeout of 0 means "do not wait at all".
_SQLITE_NO_LIMIT = 24 * 3600.0
# A pooled PostgreSQL connection that sat idle for longer than this is pinged before it is
# handed out, so one the server dropped meanwhile (a restart, an idle timeout) is replaced
# rather than failing a request. One in steady use is not pinged: a ping is a round trip, and
# every request checks a connection out twice. A connection that died within this window
# fails its statement instead: the API answers 503 and the pool replaces every connection
# opened before the failure.
PING_AFTER_IDLE_SECONDS = 1.0
_CHECKED_IN_AT = "hub.checked_in_at"
# Set in `Session.info` while `reads_only` runs.
_READS_ONLY = "hub.reads_only"


def make_engine(
    url: str,
    *,
    statement_timeout: float = 10.0,
    ping_after_idle: float = PING_AFTER_IDLE_SECONDS,
    **kwargs: Any,
) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL and a busy timeout.

    `statement_timeout` (seconds, 0 for none) bounds how long one statement may run or wait
    for a lock: SQLite's busy timeout, PostgreSQL's `statement_timeout` and `lock_timeout`.
    A request stuck behind a lock then fails (503, nothing disclosed) instead of hanging.
    A PostgreSQL connection idle in the pool for `ping_after_idle` seconds or more is checked
    before it is handed out.
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
    engine = create_engine(url, **kwargs)
    _ping_when_idle(engine, idle_seconds=ping_after_idle)
    milliseconds = round(statement_timeout * 1000)

    @event.listens_for(engine, "connect")
    def _postgres_timeouts(dbapi_connection: Any, _record: Any) -> None:
        # Set once per connection, outside any transaction a rollback could undo.
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET statement_timeout = {milliseconds}")
            cursor.execute(f"SET lock_timeout = {milliseconds}")
        dbapi_connection.commit()

    return engine


def _ping_when_idle(engine: Engine, *, idle_seconds: float) -> None:
    """Check a pooled connection idle for `idle_seconds` or more before it is used."""

    @event.listens_for(engine, "checkin")
    def _note_checkin(dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None:  # None: it was invalidated, and is replaced on use
            record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        # A connection just opened has no check-in time and needs no ping.
        checked_in_at = record.info.get(_CHECKED_IN_AT)
        if checked_in_at is None or time.monotonic() - checked_in_at < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool opens a new connection in its place. One dead connection suggests the
            # server restarted, so the others opened before now are replaced as they are next
            # checked out, however briefly they were idle.
            raise DisconnectionError("pooled connection is no longer usable") from exc


@contextmanager
def reads_only(session: Session) -> Iterator[None]:
    """Run a step that only reads: on PostgreSQL each statement is its own transaction
    (autocommit), which saves the BEGIN and ROLLBACK round trips of a transaction around them.

    Each statement still sees committed data only; several statements are no more consistent
    with each other than under READ COMMITTED, the default, already were. The block ends with
    a rollback, so the connection goes back to the pool (a session that had already begun a
    transaction reads in it, and it is rolled back as well). A flush inside the block raises
    RuntimeError: a write there would be committed at once, on its own, instead of with the
    step's other writes. Starting the block over changes not yet flushed raises RuntimeError
    too: its closing rollback would drop them without a word.
    """
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("reads_only would roll back changes not yet saved")
    if not session.in_transaction() and session.get_bind().dialect.name == "postgresql":
        # SQLite's driver begins a transaction only before a write, so reads already run so.
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    session.info[_READS_ONLY] = True
    try:
        yield
    finally:
        del session.info[_READS_ONLY]
        session.rollback()


@event.listens_for(OrmSession, "before_flush")
def _refuse_writes_in_reads_only(
    session: OrmSession, _flush: UOWTransaction, _instances: object
) -> None:
    if session.info.get(_READS_ONLY):
        raise RuntimeError("a write inside reads_only would be committed on its own")


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
