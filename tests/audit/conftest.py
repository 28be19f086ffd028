"""Fixtures for the audit log's tests: a migrated database per backend, a checkpoint signer,
and the whole-hub fixtures of the API tests for the HTTP and CLI checks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Engine, event
from sqlmodel import Session

from hub.audit.notes import CheckpointSigner
from hub.services import audit
from hub.storage.db import create_schema, make_engine
from tests.api import conftest as api
from tests.api.conftest import Hub
from tests.api.flows import case_in_assessment, disclose, record_consent

# The whole-hub fixtures of the API tests, for the HTTP and CLI tests here.
hub = api.hub
hub_settings = api.hub_settings
make_hub = api.make_hub
opa_oracle = api.opa_oracle
sources = api.sources

ORIGIN = "hub.test/audit"
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    create_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def signer() -> CheckpointSigner:
    return CheckpointSigner(origin=ORIGIN, private_key=Ed25519PrivateKey.generate())


def append_entries(
    engine: Engine, count: int, *, signer: CheckpointSigner | None = None, per_commit: int = 1
) -> None:
    """Append `count` entries whose bodies hold references only, `per_commit` per transaction."""
    with Session(engine, expire_on_commit=False) as session:
        start = audit.count(session=session)
        for i in range(start, start + count):
            audit.append(
                session=session,
                kind="disclosure" if i % 3 else "denial",
                body={"decision": "allow" if i % 3 else "deny", "decision_id": f"d-{i}", "n": i},
                now=T0 + timedelta(seconds=i, microseconds=i),
                signer=signer,
            )
            if (i + 1 - start) % per_commit == 0:
                audit.commit(session=session)
        audit.commit(session=session)


class FailingAuditCommits:
    """Makes the database refuse the commit of any transaction that wrote audit entries, as a
    full disk or a lost connection would; other transactions commit normally."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.refused = 0

    def _mark(self, conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        if "INSERT INTO audit_entry" in statement:
            conn.info["wrote_audit"] = True

    def _refuse(self, conn: Connection) -> None:
        if conn.info.pop("wrote_audit", False):
            self.refused += 1
            raise OSError("simulated: the database refused the commit")

    def __enter__(self) -> FailingAuditCommits:
        event.listen(self.engine, "before_cursor_execute", self._mark)
        event.listen(self.engine, "commit", self._refuse)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._mark)
        event.remove(self.engine, "commit", self._refuse)


@pytest.fixture
def disclosed(hub: Hub) -> tuple[Hub, list[dict[str, Any]]]:
    """A demo hub that has answered three disclosures."""
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)
    answers = [disclose(hub, case_id).json() for _ in range(3)]
    return hub, answers
