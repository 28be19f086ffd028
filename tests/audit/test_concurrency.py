"""Concurrent writers leave one consistent log: no sequence number twice, no gap, every chain
link and tree node right, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from hub.audit.verifier import VerifierKey, verify_receipt
from hub.services import audit
from hub.storage.db import make_engine
from tests.api.conftest import SCHOOL, Hub
from tests.api.flows import case_in_assessment, record_consent

from .conftest import append_entries

WRITERS = 32


def test_32_concurrent_appenders_leave_a_consistent_log(database_url: str) -> None:
    from hub.storage.db import create_schema

    engine = make_engine(database_url, pool_size=WRITERS, max_overflow=0)
    create_schema(engine)
    start = threading.Barrier(WRITERS)

    def write(_: int) -> None:
        start.wait()
        append_entries(engine, 5)

    try:
        with ThreadPoolExecutor(WRITERS) as pool:
            list(pool.map(write, range(WRITERS)))
        with Session(engine) as session:
            report = audit.verify(session=session)
        assert report.entries == WRITERS * 5
        with engine.connect() as conn:
            assert conn.execute(text("SELECT size FROM audit_head")).scalar_one() == WRITERS * 5
    finally:
        engine.dispose()


def test_32_concurrent_disclosures_leave_a_consistent_log(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)
    headers = hub.agency_headers(SCHOOL)
    start = threading.Barrier(WRITERS)

    def request(_: int) -> Any:
        start.wait()
        return hub.client.post(
            f"/v1/cases/{case_id}/disclosures",
            headers=headers,
            json={"purpose": "risk_assessment", "categories": ["education"]},
        )

    with ThreadPoolExecutor(WRITERS) as pool:
        responses = list(pool.map(request, range(WRITERS)))

    assert [r.status_code for r in responses] == [200] * WRITERS, [
        r.text for r in responses if r.status_code != 200
    ]
    answers = [r.json() for r in responses]
    assert len({a["audit_index"] for a in answers}) == WRITERS
    key = VerifierKey.from_text(hub.client.get("/v1/audit/key").text)
    for answer in answers:
        assert verify_receipt(answer["receipt"], key=key).decision_id == answer["decision_id"]
    with hub.session() as session:
        report = audit.verify(session=session, keys=[key])
    assert report.entries >= max(a["audit_index"] for a in answers)
