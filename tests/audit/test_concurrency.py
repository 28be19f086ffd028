"""Concurrent writers leave one consistent log: no sequence number twice, no gap, every chain
link and tree node right, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from hub.audit.verifier import VerifierKey, verify_receipt
from hub.services import audit, decisions
from hub.storage.db import make_engine
from hub.storage.models import AuditEntry, DecisionRecord
from tests.api.conftest import SCHOOL, Hub
from tests.api.flows import case_in_assessment, record_consent

from .conftest import FailingAuditCommits, append_entries

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


def _logged_decisions(hub: Hub) -> list[tuple[str, dict[str, Any]]]:
    with hub.session() as session:
        entries = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all()
        return [(e.kind, json.loads(e.body)) for e in entries if e.kind in ("disclosure", "denial")]


def test_32_concurrent_disclosures_and_denials_each_get_one_entry_after_their_record(
    hub: Hub,
) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)
    headers = hub.agency_headers(SCHOOL)
    start = threading.Barrier(WRITERS)
    # Even requests are covered by the consent; odd ones ask for a purpose it does not cover.
    purposes = ["risk_assessment" if n % 2 == 0 else "intervention_planning" for n in range(32)]

    def request(n: int) -> Any:
        start.wait()
        return hub.client.post(
            f"/v1/cases/{case_id}/disclosures",
            headers=headers,
            json={"purpose": purposes[n], "categories": ["education"]},
        )

    with ThreadPoolExecutor(WRITERS) as pool:
        responses = list(pool.map(request, range(WRITERS)))

    assert [r.status_code for r in responses] == [200, 403] * (WRITERS // 2)
    logged = _logged_decisions(hub)
    assert sorted(kind for kind, _ in logged) == ["denial"] * 16 + ["disclosure"] * 16
    answered = {r.json()["decision_id"] for r in responses if r.status_code == 200}
    assert answered == {body["decision_id"] for kind, body in logged if kind == "disclosure"}
    # Each entry names a decision record that was durable before it, by id and digest.
    with hub.session() as session:
        for _, body in logged:
            record = session.get(DecisionRecord, body["decision_id"])
            assert record is not None
            assert decisions.record_digest(record) == body["decision_digest"]
    key = VerifierKey.from_text(hub.client.get("/v1/audit/key").text)
    with hub.session() as session:
        assert audit.verify(session=session, keys=[key]).entries == audit.count(session=session)


def test_a_disclosure_whose_audit_batch_fails_discloses_nothing(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)
    headers = hub.agency_headers(SCHOOL)
    with hub.session() as session:
        before = audit.count(session=session)

    def request(_: int) -> Any:
        return hub.client.post(
            f"/v1/cases/{case_id}/disclosures",
            headers=headers,
            json={"purpose": "risk_assessment", "categories": ["education"]},
        )

    with FailingAuditCommits(hub.state.engine) as failing, ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(request, range(4)))
    assert failing.refused >= 1
    assert [r.status_code for r in responses] == [503] * 4
    for response in responses:
        assert response.json()["error"]["code"] == "audit_unavailable"
        assert "records" not in response.text and "receipt" not in response.text
    key = VerifierKey.from_text(hub.client.get("/v1/audit/key").text)
    with hub.session() as session:
        assert audit.count(session=session) == before
        assert audit.verify(session=session, keys=[key]).entries == before
        # The decision records went in the refused batch too: none is left without its entry.
        assert session.exec(select(DecisionRecord)).all() == []
    # The next request is answered, with the next entry.
    answer = request(0)
    assert answer.status_code == 200, answer.text
    assert answer.json()["audit_index"] == before + 1
