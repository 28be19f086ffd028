"""Retention: `hub retention run` purges cases past their retention date — case data gone,
the person's key destroyed, nothing of them left in any table — while the audit log keeps
its entries and still verifies. It shows progress and can be re-run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlmodel import select
from typer.testing import CliRunner

from hub.cli import app
from hub.services import subjects
from hub.storage.models import AuditEntry, Case
from tests.api.conftest import PANEL, POLICE, SCHOOL, SOCIAL, YOUTH, Hub
from tests.api.flows import ALEX, disclose, move, refer_alex, use_hub_env
from tests.api.workflow_flows import (
    assess,
    close,
    plan,
    to_assessment,
    voluntary_agreement,
)

PROFILE = "situation_table"


def walk_to_closed(hub: Hub) -> str:
    """A case with something in every workflow table: consent, plan, grant by access request,
    break-glass window and its review, disclosures, then closed."""
    case_id = str(refer_alex(hub)["id"])
    move(hub, case_id, "screening")
    to_assessment(hub, case_id, PROFILE)
    assert assess(hub, case_id, PROFILE).status_code == 201
    consent_id = voluntary_agreement(hub, case_id)
    assert plan(hub, case_id, consent_id).status_code == 201
    asked = hub.client.post(
        f"/v1/cases/{case_id}/access-requests",
        headers=hub.agency_headers(YOUTH),
        json={
            "purpose": "intervention_planning",
            "categories": ["contact"],
            "justification": "Alex Example's mentor needs to arrange the first meeting.",
        },
    ).json()
    decided = hub.client.post(
        f"/v1/access-requests/{asked['id']}/decision",
        headers=hub.user_headers("coordinator"),
        json={"decision": "approve", "expires_at": (hub.now[0] + timedelta(days=7)).isoformat()},
    )
    assert decided.status_code == 200, decided.text
    assert (
        disclose(
            hub,
            case_id,
            agency=SOCIAL,
            purpose="intervention_planning",
            categories=["identity", "contact"],
        ).status_code
        == 200
    )
    glass = disclose(
        hub,
        case_id,
        agency=POLICE,
        purpose="safeguarding_emergency",
        categories=["identity"],
        break_glass=True,
        justification="Alex Example was reported missing overnight.",
    )
    assert glass.status_code == 200, glass.text
    close(hub, case_id)
    return case_id


def needles(hub: Hub, subject_id: str) -> dict[str, str]:
    keyring = hub.state.keyring
    found = {
        "given name": ALEX["given_name"],
        "family name": ALEX["family_name"],
        "local id": ALEX["local_id"],
        "date of birth": ALEX["date_of_birth"],
        "subject id": subject_id,
        "panel pseudonym": subjects.pseudonym_for(
            keyring, domain=subjects.panel_domain(PANEL), subject_id=subject_id
        ),
    }
    for agency in (POLICE, SCHOOL, SOCIAL, YOUTH):
        found[f"{agency} pseudonym"] = subjects.pseudonym_for(
            keyring, domain=subjects.agency_domain(agency), subject_id=subject_id
        )
    return found


def scan(hub: Hub, targets: dict[str, str]) -> list[str]:
    """Every (table, what) where a target still appears, reading every row of every table."""
    hits: list[str] = []
    engine = hub.state.engine
    with engine.connect() as connection:
        for table in inspect(engine).get_table_names():
            rows = connection.execute(text(f'SELECT * FROM "{table}"')).all()
            dump = "\n".join(repr(tuple(row)) for row in rows)
            hits.extend(f"{table}: {what}" for what, value in targets.items() if value in dump)
    return hits


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_purge_leaves_nothing_of_the_person_and_the_log_verifies(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = walk_to_closed(hub)
    with hub.session() as session:
        case = session.get(Case, case_id)
        assert case is not None and case.retain_until is not None
        subject_id = case.subject_id
        entries_before = len(session.exec(select(AuditEntry)).all())
    targets = needles(hub, subject_id)
    assert scan(hub, {"subject id": subject_id})  # the scan does find what is there
    use_hub_env(hub, monkeypatch)

    not_yet = run("retention", "run")
    assert not_yet.exit_code == 0, not_yet.output
    assert "0 cases purged" in not_yet.output

    with hub.session() as session:  # the retention date passes
        row = session.get(Case, case_id)
        assert row is not None
        row.retain_until = datetime.now(UTC) - timedelta(seconds=1)
        session.add(row)
        session.commit()
    purged = run("retention", "run")
    assert purged.exit_code == 0, purged.output
    assert f"purged case 1/1 {case_id}" in purged.output
    assert "1 cases purged" in purged.output

    assert scan(hub, targets) == []
    with hub.session() as session:
        assert session.get(Case, case_id) is None
        kinds = [e.kind for e in session.exec(select(AuditEntry)).all()]
    assert len(kinds) == entries_before + 1  # kept, plus the purge itself
    assert kinds[-1] == "case_purged" or "case_purged" in kinds
    verified = run("audit", "verify")
    assert verified.exit_code == 0, verified.output

    again = run("retention", "run")
    assert again.exit_code == 0, again.output
    assert "0 cases purged" in again.output
    assert run("audit", "verify").exit_code == 0


def test_a_new_referral_after_the_purge_starts_afresh(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = str(refer_alex(hub)["id"])
    move(hub, case_id, "closed")
    with hub.session() as session:
        row = session.get(Case, case_id)
        assert row is not None
        row.retain_until = datetime.now(UTC) - timedelta(seconds=1)
        session.add(row)
        session.commit()
    use_hub_env(hub, monkeypatch)
    assert "1 cases purged" in run("retention", "run").output
    fresh = refer_alex(hub)
    assert fresh["id"] != case_id
    assert fresh["stage"] == "referred"
