"""A log that grew under a running hub (another worker's appends, or the benchmark's seeding)
is appended to where it now ends, receipted against it, and still verifies."""

from __future__ import annotations

from sqlmodel import select

from bench.growth import SEEDED_KIND, extend_log
from hub.audit.verifier import VerifierKey, verify_receipt
from hub.services import audit
from hub.storage.models import AuditEntry
from tests.api.conftest import Hub
from tests.api.flows import case_in_assessment, disclose, record_consent


def test_the_hub_appends_after_entries_written_by_someone_else(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)
    first = disclose(hub, case_id).json()
    key = VerifierKey.from_text(hub.client.get("/v1/audit/key").text)

    extend_log(hub.state.engine, to_size=first["audit_index"] + 300, at=hub.state.clock())
    after = disclose(hub, case_id).json()

    assert after["audit_index"] == first["audit_index"] + 301
    receipt = verify_receipt(after["receipt"], key=key)
    assert receipt.index == after["audit_index"] - 1
    assert receipt.checkpoint.tree_size >= after["audit_index"]
    with hub.session() as session:
        report = audit.verify(session=session, keys=[key])
        seeded = session.exec(select(AuditEntry).where(AuditEntry.kind == SEEDED_KIND)).all()
    assert report.entries == after["audit_index"]
    assert len(seeded) == 300
