"""Rotating the blind-index key: every subject re-indexed under the new key in resumable
batches, known people still found (never a second subject) while the run is half done, near
matches offered across it, and the old key retired only once it indexes nobody."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import Session, SQLModel, select
from typer.testing import CliRunner

from hub.cli import app
from hub.services import reindex, subject_keys, subjects
from hub.storage.models import (
    Case,
    KeyRotation,
    PossibleMatch,
    Subject,
    SubjectFieldIndex,
    SubjectLocalId,
)
from keys import KeyRing
from tests.api.conftest import PANEL, POLICE, SCHOOL, Hub
from tests.api.flows import use_hub_env
from tests.api.test_reindex import ZOE_PLAIN, _old_subject

runner = CliRunner()

# (given, family, date of birth, local id) as the school first refers them.
PEOPLE = [
    ("Zoë ", " O'Brien", "02/01/2009", "NA-1"),
    ("Amara", "Okafor", "2011-03-14", "NA-2"),
    ("Łukasz", "Nowak", "2010-03-04", "NA-3"),
    ("Дмитрий", "Иванов", "2010-05-06", "NA-4"),
]
# The same people as the police write them: equal only after normalisation.
REWRITTEN = [
    ("zoe", "obrien", "2009-01-02"),
    ("AMARA", "OKAFOR", "14/03/2011"),
    ("lukasz", "NOWAK", "4 Mar 2010"),
    ("ДМИТРИЙ", "иванов", "06/05/2010"),
]


def _now() -> datetime:
    return datetime.now(UTC)


def _master_key(hub: Hub) -> bytes:
    assert hub.settings.master_key is not None
    return base64.b64decode(hub.settings.master_key.get_secret_value())


@pytest.fixture
def hub(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> Hub:
    """The demo hub, its agencies each reusing one access token: tests here refer often."""
    tokens: dict[str, dict[str, str]] = {}
    fetch = hub.agency_headers

    def agency_headers(agency: str) -> dict[str, str]:
        if agency not in tokens:
            tokens[agency] = fetch(agency)
        return tokens[agency]

    monkeypatch.setattr(hub, "agency_headers", agency_headers)
    return hub


def _refer(
    hub: Hub, given: str, family: str, dob: str, *, agency: str, local_id: str | None = None
) -> Any:
    person: dict[str, str] = {"given_name": given, "family_name": family, "date_of_birth": dob}
    if local_id is not None:
        person["local_id"] = local_id
    response = hub.client.post(
        "/v1/referrals",
        headers=hub.agency_headers(agency),
        json={
            "panel": PANEL,
            "subject": person,
            "channel": "agency",
            "indicators": ["withdrawal_from_peers"],
        },
    )
    assert response.status_code in (200, 201), response.text
    return response


def _refer_everyone(hub: Hub) -> list[str]:
    """Each person's case id, referred by the school before any rotation."""
    cases = []
    for given, family, dob, local_id in PEOPLE:
        response = _refer(hub, given, family, dob, agency=SCHOOL, local_id=local_id)
        assert response.status_code == 201, response.text
        cases.append(response.json()["id"])
    return cases


def _rotate(hub: Hub) -> KeyRing:
    return KeyRing.rotate(
        hub.settings.keystore_path,
        master_key=_master_key(hub),
        purpose="blind-index",
        now=_now(),
    )


def _subject_count(hub: Hub) -> int:
    with hub.session() as session:
        return len(session.exec(select(Subject)).all())


def _versions(hub: Hub) -> dict[str, str | None]:
    with hub.session() as session:
        return {s.id: s.blind_index_version for s in session.exec(select(Subject)).all()}


def _stored_indexes(session: Session) -> set[str]:
    """Every blind index stored for a subject: identity, single fields, local identifiers
    (not the random markers of shredded subjects)."""
    stored = {s.identity_index for s in session.exec(select(Subject)).all()}
    for row in session.exec(select(SubjectFieldIndex)).all():
        stored |= {row.given_name_index, row.family_name_index, row.date_of_birth_index}
    stored |= {link.local_id_index for link in session.exec(select(SubjectLocalId)).all()}
    return {index for index in stored if not index.startswith("shredded:")}


def _expected_indexes(session: Session, keyring: KeyRing, version: str) -> set[str]:
    """What every subject's blind indexes may be under `version`, from its decrypted values
    (the identity also in its form from before hub.matching)."""
    expected: set[str] = set()
    for subject in session.exec(select(Subject)).all():
        if subject.identity_ciphertext == subject_keys.SHREDDED:
            continue
        identity = subjects.identity_of(keyring, subject)
        for form in (identity.normalised(), identity.legacy_normalised()):
            expected.add(keyring.blind_index(kind="identity", value=form, version=version))
        expected |= set(identity.field_indexes(keyring, version=version).values())
        local = subjects.local_ids(session=session, keyring=keyring, subject_id=subject.id)
        for agency_id, local_id in local.items():
            value = f"{agency_id}|{local_id}"
            expected.add(keyring.blind_index(kind="local-id", value=value, version=version))
    return expected


def test_a_rotation_reindexes_every_subject_under_the_new_key(hub: Hub) -> None:
    cases = _refer_everyone(hub)
    legacy = _old_subject(hub, subjects.Identity("Mia", "Old", datetime(2012, 1, 1).date()))
    erased = _old_subject(hub, subjects.Identity("Eve", "Gone", datetime(2012, 2, 2).date()))
    with hub.session() as session:
        subjects.shred(session=session, keyring=hub.state.keyring, subject_id=erased)
        session.commit()
        old_indexes = _expected_indexes(session, hub.state.keyring, "v1")
        assert _stored_indexes(session) <= old_indexes
    total = _subject_count(hub)
    rotated = _rotate(hub)
    with hub.session() as session:
        assert reindex.under_older_key(session=session, keyring=rotated) == total

    result = reindex.run_blind_index_rotation(
        engine=hub.state.engine, keyring=rotated, now=_now, batch_size=2
    )

    assert result.finished and not result.resumed
    assert result.processed == total and result.target_kid == rotated.blind_index_kid
    assert set(_versions(hub).values()) == {"v2"}
    with hub.session() as session:
        assert reindex.under_older_key(session=session, keyring=rotated) == 0
        assert reindex.still_under(session=session, version="v1") == 0
        stored = _stored_indexes(session)
        # Everything is under the new key, and nothing at all is left under the old one.
        assert stored <= _expected_indexes(session, rotated, "v2")
        assert not stored & old_indexes
        assert session.get(SubjectFieldIndex, legacy) is not None  # brought to `n2` too
        shredded = session.get(Subject, erased)
        assert shredded is not None and shredded.identity_index == f"shredded:{erased}"
    # Everyone is found by the new key alone, however the referral writes them.
    for (given, family, dob), case_id in zip(REWRITTEN, cases, strict=True):
        again = _refer(hub, given, family, dob, agency=POLICE)
        assert (again.status_code, again.json()["id"]) == (200, case_id)
    with hub.session() as session:
        found = subjects.find_by_identity(session=session, keyring=rotated, identity=ZOE_PLAIN)
        first = session.get(Case, cases[0])
        assert found is not None and first is not None and found.id == first.subject_id
    assert _subject_count(hub) == total


def _check_everyone_is_found(hub: Hub, cases: list[str], seen: dict[int, set[str]]) -> None:
    """Each person, written the other way by the police, or named only by the school's own
    identifier, is their existing case; records which key each was indexed under then."""
    versions = _versions(hub)
    for index, ((given, family, dob), case_id) in enumerate(zip(REWRITTEN, cases, strict=True)):
        with hub.session() as session:
            case = session.get(Case, case_id)
            assert case is not None
            seen.setdefault(index, set()).add(str(versions[case.subject_id]))
        again = _refer(hub, given, family, dob, agency=POLICE)
        assert (again.status_code, again.json()["id"]) == (200, case_id)
        local_id = PEOPLE[index][3]
        by_id = _refer(hub, "Someone", "Else", "2001-01-01", agency=SCHOOL, local_id=local_id)
        assert (by_id.status_code, by_id.json()["id"]) == (200, case_id)


def test_a_half_done_rotation_still_finds_everyone_and_resumes_to_the_end(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = _refer_everyone(hub)
    total = _subject_count(hub)
    rotated = _rotate(hub)
    seen: dict[int, set[str]] = {}
    _check_everyone_is_found(hub, cases, seen)  # none re-indexed yet
    for step in range(1, total):
        # One subject further, then interrupted.
        partial = reindex.run_blind_index_rotation(
            engine=hub.state.engine, keyring=rotated, now=_now, batch_size=1, max_batches=1
        )
        assert not partial.finished and partial.processed == step
        assert (
            sorted(str(v) for v in _versions(hub).values())
            == ["v1"] * (total - step) + ["v2"] * step
        )
        _check_everyone_is_found(hub, cases, seen)
    assert _subject_count(hub) == total  # no referral made a second subject
    # `hub keys rotate blind-index` again: resumes the run, adding no key, and finishes it.
    use_hub_env(hub, monkeypatch)
    resumed = runner.invoke(app, ["keys", "rotate", "blind-index", "--batch-size", "1"])
    assert resumed.exit_code == 0, resumed.output
    assert "resuming: 1 subjects are still indexed under an older blind-index key" in (
        resumed.output
    )
    assert f"{total} subjects now indexed under {rotated.blind_index_kid}" in resumed.output
    _check_everyone_is_found(hub, cases, seen)
    # Every person, Zoë included, was found both before and after their own re-indexing.
    assert seen == {index: {"v1", "v2"} for index in range(len(PEOPLE))}
    assert _subject_count(hub) == total
    with hub.session() as session:
        assert reindex.still_under(session=session, version="v1") == 0
        assert not _stored_indexes(session) & _expected_indexes(session, rotated, "v1")
        runs = session.exec(select(KeyRotation).where(KeyRotation.purpose == "blind-index")).all()
        assert [(r.status, r.target_kid) for r in runs] == [("done", rotated.blind_index_kid)]
    ring = KeyRing.open(hub.settings.keystore_path, master_key=_master_key(hub))
    assert ring.blind_index_version == "v2"  # resuming added no key


def _matches(hub: Hub, case_id: str) -> set[tuple[str, str]]:
    """(candidate case, differing field) of each near match offered for the case."""
    with hub.session() as session:
        rows = session.exec(select(PossibleMatch).where(PossibleMatch.case_id == case_id)).all()
        found = set()
        for row in rows:
            case = session.exec(
                select(Case).where(Case.subject_id == row.candidate_subject_id)
            ).one()
            found.add((case.id, row.differing_field))
        return found


def test_near_matches_are_offered_across_the_rotation(hub: Hub) -> None:
    def refer(family: str, dob: str = "2010-07-08") -> str:
        response = _refer(hub, "Sam", family, dob, agency=POLICE)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    taylor = refer("Taylor")  # indexed under v1
    rotated = _rotate(hub)
    # Taylor not yet re-indexed; Tailor is indexed under v2 from the start.
    tailor = refer("Tailor")
    assert _matches(hub, tailor) == {(taylor, "family_name")}
    # A subject under each key, both offered.
    taylar = refer("Taylar")
    assert _matches(hub, taylar) == {(taylor, "family_name"), (tailor, "family_name")}
    reindex.run_blind_index_rotation(engine=hub.state.engine, keyring=rotated, now=_now)
    later = refer("Taylor", dob="2010-08-07")
    assert _matches(hub, later) == {(taylor, "date_of_birth")}
    tayler = refer("Tayler")
    assert _matches(hub, tayler) == {
        (taylor, "family_name"),
        (tailor, "family_name"),
        (taylar, "family_name"),
    }


def _retire(version: str) -> Any:
    return runner.invoke(app, ["keys", "retire", "blind-index", version])


def test_the_old_key_is_retired_only_once_it_indexes_nobody(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = _refer_everyone(hub)
    left = _subject_count(hub) - 1  # after one batch of one
    use_hub_env(hub, monkeypatch)
    current = _retire("v1")
    assert current.exit_code == 1 and "is the current key; rotate first" in current.output
    old_kid = hub.state.keyring.blind_index_kid
    rotated = _rotate(hub)
    reindex.run_blind_index_rotation(
        engine=hub.state.engine, keyring=rotated, now=_now, batch_size=1, max_batches=1
    )
    listed = runner.invoke(app, ["keys", "list"])
    assert listed.exit_code == 0, listed.output
    rows = [line.split() for line in listed.output.splitlines()]
    assert [(r[2], r[3]) for r in rows if r[1].startswith("bix-")] == [
        ("v2", "current"),
        ("v1", "previous"),
    ]
    assert f"blind-index v1 still indexes {left} subjects" in listed.output

    refused = _retire("v1")

    assert refused.exit_code == 1
    assert f"{left} subjects are still indexed under {old_kid}" in refused.output
    finished = runner.invoke(app, ["keys", "rotate", "blind-index"])
    assert finished.exit_code == 0, finished.output
    retired = _retire("v1")
    assert retired.exit_code == 0, retired.output
    assert f"key {old_kid} (v1) retired at " in retired.output
    listed = runner.invoke(app, ["keys", "list"])
    rows = [line.split() for line in listed.output.splitlines()]
    assert [(r[2], r[3]) for r in rows if r[1].startswith("bix-")] == [
        ("v2", "current"),
        ("v1", "retired"),
    ]
    assert "still indexes" not in listed.output
    # The serving hub, now with the new key alone, still finds everyone.
    for (given, family, dob), case_id in zip(REWRITTEN, cases, strict=True):
        again = _refer(hub, given, family, dob, agency=POLICE)
        assert (again.status_code, again.json()["id"]) == (200, case_id)
    assert list(hub.state.keyring.blind_indexes(kind="identity", value="x")) == ["v2"]


def test_hub_keys_rotate_blind_index_end_to_end(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    cases = _refer_everyone(hub)
    total = _subject_count(hub)
    use_hub_env(hub, monkeypatch)

    rotated = runner.invoke(app, ["keys", "rotate", "blind-index", "--batch-size", "3"])

    assert rotated.exit_code == 0, rotated.output
    ring = KeyRing.open(hub.settings.keystore_path, master_key=_master_key(hub))
    assert f"blind-index: new key {ring.blind_index_kid} (v2) now writes" in rotated.output
    assert (
        f"blind-index: {total} subjects now indexed under {ring.blind_index_kid} "
        f"in {-(-total // 3)} batches; none is left under an older key" in rotated.output
    )
    assert set(_versions(hub).values()) == {"v2"}
    for (given, family, dob), case_id in zip(REWRITTEN, cases, strict=True):
        again = _refer(hub, given, family, dob, agency=POLICE)
        assert (again.status_code, again.json()["id"]) == (200, case_id)
    # Nothing left under an older key: the next rotation adds v3.
    again = runner.invoke(app, ["keys", "rotate", "blind-index"])
    assert again.exit_code == 0, again.output
    assert "(v3) now writes" in again.output and "resuming" not in again.output


def test_every_blind_index_column_is_reindexed() -> None:
    # A new `*_index` column fails here until `subjects.reindex` recomputes it.
    columns = {
        (table.name, column.name)
        for table in SQLModel.metadata.sorted_tables
        for column in table.columns
        if column.name.endswith("_index")
    }
    assert columns == set(reindex.BLIND_INDEX_COLUMNS)
