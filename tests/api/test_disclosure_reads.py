"""What a disclosure reads, and how: every request sees the database as it is now, a step that
only reads cannot write, and the hot path stays at a handful of statements."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import col, delete, select

from connectors import Record, RecordSet, SourceQuery
from connectors.fake import FakeConnector
from hub.services import subjects
from hub.services.sources import StaticConnectors
from hub.storage.db import reads_only
from hub.storage.models import Agency, AuditEntry, Case, PanelMembership, Subject
from tests.api.conftest import PANEL, SCHOOL, SOCIAL, Hub
from tests.api.flows import case_in_assessment, disclose, record_consent
from tests.api.outsiders import OUTSIDER, add_outsider_agency

BOTH = ["education", "social_care"]


def _last_entry(hub: Hub) -> dict[str, Any]:
    with hub.session() as session:
        entry = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq).desc())).first()
    assert entry is not None
    return dict(json.loads(entry.body))


@contextmanager
def _selects(hub: Hub) -> Iterator[list[str]]:
    """The SELECT statements run while the block runs, other than the audit log's own."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        text = " ".join(statement.split())
        if text.upper().startswith("SELECT") and "audit_" not in text:
            seen.append(text)

    event.listen(hub.state.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(hub.state.engine, "before_cursor_execute", note)


def test_an_agency_taken_off_the_panel_is_refused_on_its_next_request(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)
    school = hub.agency_headers(SCHOOL)
    assert disclose(hub, case_id, categories=BOTH).status_code == 200

    with hub.session() as session:
        session.exec(
            delete(PanelMembership).where(
                col(PanelMembership.panel_id) == PANEL, col(PanelMembership.agency_id) == SCHOOL
            )
        )
        session.commit()
    # The same token, still valid: the membership is read again, not remembered.
    response = hub.client.post(
        f"/v1/cases/{case_id}/disclosures",
        headers=school,
        json={"purpose": "risk_assessment", "categories": BOTH},
    )

    assert response.status_code == 404, response.text  # not even told the case exists
    logged = _last_entry(hub)
    assert logged["decision"] == "deny" and "not_panel_member" in logged["reasons"]


def test_identifiers_held_outside_the_panel_are_scrubbed_too(
    make_hub: Callable[..., Hub],
) -> None:
    asked: dict[str, list[SourceQuery]] = {SCHOOL: [], OUTSIDER: []}

    def echo(agency: str, fields: dict[str, Any]) -> FakeConnector:
        def answer(query: SourceQuery) -> RecordSet:
            asked[agency].append(query)
            return RecordSet(records=(Record(category="education", fields=fields),))

        return FakeConnector(answer, categories={"education"})

    # A careless source echoes the subject's identifiers at other agencies, including one
    # held by an agency of another panel, which is never asked.
    leaky = {"theirs": "ST-4471", "ours": "NA-2231", "kept": "attends daily"}
    connectors = StaticConnectors(
        {SCHOOL: echo(SCHOOL, leaky), OUTSIDER: echo(OUTSIDER, {"x": "y"})}
    )
    hub = make_hub(connectors=connectors)
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)
    add_outsider_agency(hub)
    with hub.session() as session:
        case = session.get(Case, case_id)
        assert case is not None
        subject = session.get(Subject, case.subject_id)
        assert subject is not None
        subjects.link_local_id(
            session=session,
            keyring=hub.state.keyring,
            subject=subject,
            agency_id=OUTSIDER,
            local_id="ST-4471",
        )
        session.commit()

    response = disclose(hub, case_id, categories=["education"])

    assert response.status_code == 200, response.text
    [record] = response.json()["records"]["education"]
    assert record["fields"] == {
        "theirs": "[redacted]",
        "ours": "[redacted]",
        "kept": "attends daily",
    }
    assert [q.local_id for q in asked[SCHOOL]] == ["NA-2231"]
    assert asked[OUTSIDER] == []  # not a member of the case's panel


def test_a_write_inside_a_reading_step_is_refused(hub: Hub) -> None:
    with hub.session() as session:
        with pytest.raises(RuntimeError, match="committed on its own"), reads_only(session):
            session.add(Agency(id="ghost-agency", name="Ghost", kind="school"))
            session.flush()
        assert session.get(Agency, "ghost-agency") is None
    with hub.session() as session:
        assert session.get(Agency, "ghost-agency") is None


def test_a_reading_step_will_not_start_over_unsaved_changes(hub: Hub) -> None:
    # Its closing rollback would otherwise drop them without a word.
    with hub.session() as session:
        session.add(Agency(id="pending-agency", name="Pending", kind="school"))
        with pytest.raises(RuntimeError, match="not yet saved"), reads_only(session):
            pass
        session.commit()  # the change is still there to be saved
    with hub.session() as session:
        assert session.get(Agency, "pending-agency") is not None


def test_a_disclosure_reads_in_four_statements(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)
    school = hub.agency_headers(SCHOOL)

    with _selects(hub) as seen:
        response = hub.client.post(
            f"/v1/cases/{case_id}/disclosures",
            headers=school,
            json={"purpose": "risk_assessment", "categories": BOTH},
        )

    assert response.status_code == 200, response.text
    # The token check; the case with its subject, panel, data key and the requester's agency;
    # the consents and grants; the holders and the subject's identifiers. Each statement is a
    # round trip to the database server: a new one here costs every request.
    assert len(seen) == 4, "\n".join(seen)
    assert {r["source"] for r in response.json()["records"]["social_care"]} == {SOCIAL}


def test_connections_go_back_to_the_pool_in_transactional_mode(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)
    for _ in range(2):  # the first one's connection may stay with the audit writer
        assert disclose(hub, case_id, categories=BOTH).status_code == 200
    engine = hub.state.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL reads in autocommit mode")

    # Every connection the reads used is back in the pool; a writer that takes one next must
    # get a transaction, not statements committed one by one.
    pooled = [engine.raw_connection() for _ in range(engine.pool.checkedin())]  # type: ignore[attr-defined]
    try:
        assert pooled
        for conn in pooled:
            assert conn.driver_connection.autocommit is False  # type: ignore[union-attr]
    finally:
        for conn in pooled:
            conn.close()
