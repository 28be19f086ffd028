"""Re-identification over HTTP, matching of referrals written differently, near matches, and
old pseudonyms after a pseudonym-root rotation."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import select

from hub.services import subjects
from hub.storage.models import AuditEntry, Case, PossibleMatch
from keys import KeyRing
from tests.api.conftest import PANEL, POLICE, SCHOOL, Hub
from tests.api.flows import refer_alex

REASON = {"reason_code": "safeguarding_action", "reason": "Panel needs to contact the family."}


def _close(hub: Hub, case_id: str) -> None:
    with hub.session() as session:
        case = session.get(Case, case_id)
        assert case is not None
        case.stage = "closed"
        session.add(case)
        session.commit()


def _audit_kinds(hub: Hub) -> list[tuple[str, dict[str, Any]]]:
    with hub.session() as session:
        return [(e.kind, json.loads(e.body)) for e in session.exec(select(AuditEntry)).all()]


def test_the_coordinator_of_an_open_case_reidentifies_at_once(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    response = hub.client.post(
        f"/v1/cases/{case_id}/reidentify", headers=hub.user_headers("coordinator"), json=REASON
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "granted"
    assert (body["given_name"], body["family_name"], body["date_of_birth"]) == (
        "Alex",
        "Example",
        "2011-03-14",
    )


def test_reidentification_is_refused_without_the_second_approver(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    _close(hub, case_id)
    coordinator = hub.user_headers("coordinator")
    filed = hub.client.post(f"/v1/cases/{case_id}/reidentify", headers=coordinator, json=REASON)
    assert filed.status_code == 202, filed.text
    assert filed.json()["status"] == "pending"
    assert filed.json()["given_name"] is None
    request_id = filed.json()["request_id"]
    early = hub.client.post(
        f"/v1/cases/{case_id}/reidentify",
        headers=coordinator,
        json={**REASON, "request_id": request_id},
    )
    assert early.status_code == 409
    assert "needs a coordinator's and a DPO's approval" in early.json()["error"]["message"]
    own = hub.client.post(f"/v1/reidentifications/{request_id}/approve", headers=coordinator)
    assert own.status_code == 409
    assert "another person" in own.json()["error"]["message"]
    approved = hub.client.post(
        f"/v1/reidentifications/{request_id}/approve", headers=hub.user_headers("dpo")
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    used = hub.client.post(
        f"/v1/cases/{case_id}/reidentify",
        headers=coordinator,
        json={**REASON, "request_id": request_id},
    )
    assert used.status_code == 200, used.text
    assert used.json()["given_name"] == "Alex"
    again = hub.client.post(
        f"/v1/cases/{case_id}/reidentify",
        headers=coordinator,
        json={**REASON, "request_id": request_id},
    )
    assert again.status_code == 409


def test_agencies_may_not_reidentify_and_codes_are_checked(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    agency = hub.client.post(
        f"/v1/cases/{case_id}/reidentify", headers=hub.agency_headers(SCHOOL), json=REASON
    )
    assert agency.status_code == 403
    bad = hub.client.post(
        f"/v1/cases/{case_id}/reidentify",
        headers=hub.user_headers("coordinator"),
        json={"reason_code": "curiosity", "reason": "x"},
    )
    assert bad.status_code == 422
    assert "reason_code must be one of" in bad.json()["error"]["message"]


def test_reidentification_is_audited_with_a_reason_code_and_no_personal_data(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    hub.client.post(
        f"/v1/cases/{case_id}/reidentify", headers=hub.user_headers("coordinator"), json=REASON
    )
    entries = [body for kind, body in _audit_kinds(hub) if kind == "reidentified"]
    assert len(entries) == 1
    assert entries[0]["reason_code"] == "safeguarding_action"
    assert entries[0]["basis"] == "coordinator_of_open_case"
    text = str(entries[0])
    for personal in ("Alex", "Example", "2011", "contact the family"):
        assert personal not in text


def _refer(hub: Hub, given: str, family: str, dob: str, agency: str = SCHOOL) -> Any:
    return hub.client.post(
        "/v1/referrals",
        headers=hub.agency_headers(agency),
        json={
            "panel": PANEL,
            "subject": {"given_name": given, "family_name": family, "date_of_birth": dob},
            "channel": "agency",
            "indicators": ["withdrawal_from_peers"],
        },
    )


def test_one_person_written_two_ways_is_one_subject(hub: Hub) -> None:
    first = _refer(hub, "Zoë ", " O'Brien", "02/01/2009")
    assert first.status_code == 201, first.text
    second = _refer(hub, "zoe", "obrien", "2009-01-02")
    assert second.status_code == 200, second.text
    assert second.json()["id"] == first.json()["id"]
    third = _refer(hub, "ZOE", "O BRIEN", "2 Jan 2009")
    assert third.json()["id"] == first.json()["id"]


def test_a_non_latin_name_round_trips_and_matches(hub: Hub) -> None:
    first = _refer(hub, "Дмитрий", "Иванов", "2010-05-06")
    assert first.status_code == 201, first.text
    second = _refer(hub, "ДМИТРИЙ", "иванов", "06/05/2010")
    assert second.json()["id"] == first.json()["id"]
    shown = hub.client.post(
        f"/v1/cases/{first.json()['id']}/reidentify",
        headers=hub.user_headers("coordinator"),
        json=REASON,
    )
    assert (shown.json()["given_name"], shown.json()["family_name"]) == ("Дмитрий", "Иванов")


def test_a_near_match_is_offered_to_the_coordinator_never_merged(hub: Hub) -> None:
    first = _refer(hub, "Sam", "Taylor", "2010-07-08")
    near = _refer(hub, "Sam", "Tailor", "2010-07-08", agency=POLICE)
    assert near.status_code == 201, near.text
    assert near.json()["id"] != first.json()["id"]
    coordinator = hub.user_headers("coordinator")
    listed = hub.client.get(f"/v1/cases/{near.json()['id']}/possible-matches", headers=coordinator)
    assert listed.status_code == 200, listed.text
    (match,) = listed.json()
    assert match["differing_field"] == "family_name"
    assert match["status"] == "open"
    # The other subject as the coordinator sees it: the panel's pseudonym, never a name.
    other = hub.client.get(f"/v1/cases/{first.json()['id']}", headers=coordinator).json()
    assert match["candidate"] == other["subject"]
    decided = hub.client.post(
        f"/v1/possible-matches/{match['id']}", headers=coordinator, json={"decision": "rejected"}
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "rejected"
    agency = hub.client.get(
        f"/v1/cases/{near.json()['id']}/possible-matches", headers=hub.agency_headers(POLICE)
    )
    assert agency.status_code == 403
    with hub.session() as session:
        assert len(session.exec(select(PossibleMatch)).all()) == 1


def _master_key(hub: Hub) -> bytes:
    assert hub.settings.master_key is not None
    return base64.b64decode(hub.settings.master_key.get_secret_value())


def test_an_agency_gets_the_current_form_of_its_old_pseudonym(hub: Hub) -> None:
    case = refer_alex(hub)
    old = case["subject"]
    assert old.startswith("v1.")
    KeyRing.rotate(
        hub.settings.keystore_path, master_key=_master_key(hub), purpose="pseudonym-root"
    )
    hub.state.keyring.refresh(force=True)
    school = hub.agency_headers(SCHOOL)
    now_shown = hub.client.get(f"/v1/cases/{case['id']}", headers=school).json()["subject"]
    assert now_shown.startswith("v2.")
    current = hub.client.get(f"/v1/pseudonyms/{old}/current", headers=school)
    assert current.status_code == 200, current.text
    assert current.json() == {"pseudonym": now_shown, "version": "v2", "previous": old}
    # Another agency's domain never resolves it, and a coordinator, not an agency, has no
    # pseudonyms to resolve.
    assert (
        hub.client.get(
            f"/v1/pseudonyms/{old}/current", headers=hub.agency_headers(POLICE)
        ).status_code
        == 404
    )
    assert (
        hub.client.get(
            f"/v1/pseudonyms/{old}/current", headers=hub.user_headers("coordinator")
        ).status_code
        == 404
    )
    # After the grace period, the old form no longer resolves.
    hub.now[0] = datetime.now(UTC) + timedelta(days=181)
    expired = hub.client.get(f"/v1/pseudonyms/{old}/current", headers=hub.agency_headers(SCHOOL))
    assert expired.status_code in (401, 404)


def _bits(pseudonym: str) -> int:
    return int.from_bytes(base64.b32decode(pseudonym[3:].upper()), "big")


def test_the_same_subject_has_unlinkable_pseudonyms_in_two_domains(
    hub: Hub, tmp_path: Path
) -> None:
    keyring = hub.state.keyring
    police, school = subjects.agency_domain(POLICE), subjects.agency_domain(SCHOOL)
    case = refer_alex(hub)
    with hub.session() as session:
        subject_id = session.exec(select(Case.subject_id).where(Case.id == case["id"])).one()
    seen_by_school = case["subject"]
    assert seen_by_school == subjects.pseudonym_for(keyring, domain=school, subject_id=subject_id)
    seen_by_police = subjects.pseudonym_for(keyring, domain=police, subject_id=subject_id)
    assert seen_by_police != seen_by_school
    # Unrelated, not merely different: over many subjects the two domains' pseudonyms differ
    # in about half of their 160 bits, as independent random values do.
    distances = [
        bin(
            _bits(subjects.pseudonym_for(keyring, domain=police, subject_id=f"s{i}"))
            ^ _bits(subjects.pseudonym_for(keyring, domain=school, subject_id=f"s{i}"))
        ).count("1")
        for i in range(256)
    ]
    assert 70 < sum(distances) / len(distances) < 90
    # Everything an agency knows besides its own pseudonyms (domain names, the derivation,
    # even the subject's internal id) computes nothing without the hub's root key: another
    # keyring gives other pseudonyms for the same domain and subject.
    other = KeyRing.create(tmp_path / "other.json", master_key=bytes(32))
    assert other.pseudonym(domain=police, value=subject_id) != seen_by_police
    # And the school's pseudonym names nobody in the police's domain.
    crossed = hub.client.get(
        f"/v1/pseudonyms/{seen_by_school}/current", headers=hub.agency_headers(POLICE)
    )
    assert crossed.status_code == 404


def _lookups(hub: Hub) -> list[dict[str, Any]]:
    return [body for kind, body in _audit_kinds(hub) if kind == "pseudonym_current_form"]


def test_every_current_form_lookup_is_audited_with_references_only(hub: Hub) -> None:
    case = refer_alex(hub)
    old = case["subject"]
    KeyRing.rotate(
        hub.settings.keystore_path, master_key=_master_key(hub), purpose="pseudonym-root"
    )
    hub.state.keyring.refresh(force=True)
    assert _lookups(hub) == []
    current = hub.client.get(f"/v1/pseudonyms/{old}/current", headers=hub.agency_headers(SCHOOL))
    assert current.status_code == 200, current.text
    with hub.session() as session:
        subject_id = session.exec(select(Case.subject_id).where(Case.id == case["id"])).one()
    (entry,) = _lookups(hub)
    assert entry == {
        "actor": entry["actor"],
        "agency": SCHOOL,
        "from_version": "v1",
        "to_version": "v2",
        "outcome": "resolved",
        "subject": subjects.audit_ref(hub.state.keyring, subject_id=subject_id),
    }
    assert SCHOOL in entry["actor"]
    # Neither form of the agency's pseudonym, nor anything of the person, is in the log.
    logged = json.dumps(_audit_kinds(hub))
    assert old not in logged and current.json()["pseudonym"] not in logged
    assert "Alex" not in logged
    # A lookup that finds nothing (another agency's domain, a made-up value) is audited too.
    police = hub.client.get(f"/v1/pseudonyms/{old}/current", headers=hub.agency_headers(POLICE))
    assert police.status_code == 404
    junk = hub.client.get("/v1/pseudonyms/x'1/current", headers=hub.agency_headers(SCHOOL))
    assert junk.status_code == 404
    assert [(e["agency"], e["from_version"], e["outcome"]) for e in _lookups(hub)[1:]] == [
        (POLICE, "v1", "not_found"),
        (SCHOOL, "invalid", "not_found"),
    ]
    assert all("subject" not in e for e in _lookups(hub)[1:])


def test_a_retired_pseudonym_version_no_longer_resolves(hub: Hub) -> None:
    old = refer_alex(hub)["subject"]
    KeyRing.rotate(
        hub.settings.keystore_path, master_key=_master_key(hub), purpose="pseudonym-root"
    )
    KeyRing.retire(
        hub.settings.keystore_path,
        master_key=_master_key(hub),
        purpose="pseudonym-root",
        version="v1",
    )
    hub.state.keyring.refresh(force=True)
    gone = hub.client.get(f"/v1/pseudonyms/{old}/current", headers=hub.agency_headers(SCHOOL))
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "not_found"
    assert [e["outcome"] for e in _lookups(hub)] == ["not_found"]
