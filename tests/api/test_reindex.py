"""Re-indexing subjects indexed under an older name normaliser: found afterwards by the forms
the current normaliser matches, in resumable batches, through `hub keys reindex`."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from hub.cli import app
from hub.services import reindex, subject_keys, subjects
from hub.storage.models import KeyRotation, Subject, SubjectFieldIndex
from tests.api.conftest import SCHOOL, Hub
from tests.api.flows import use_hub_env

runner = CliRunner()
ZOE = subjects.Identity(given_name="Zoë", family_name="O'Brien", date_of_birth=date(2009, 1, 2))
# The same person as another referral writes her: equal only under the current normaliser.
ZOE_PLAIN = subjects.Identity(
    given_name="zoe", family_name="obrien", date_of_birth=date(2009, 1, 2)
)
OTHER = subjects.Identity(given_name="Łukasz", family_name="Nowak", date_of_birth=date(2010, 3, 4))


def _now() -> datetime:
    return datetime.now(UTC)


def _old_subject(hub: Hub, identity: subjects.Identity) -> str:
    """A subject as it was stored before hub.matching: legacy index, no field indexes."""
    keyring = hub.state.keyring
    with hub.session() as session:
        subject = Subject(
            identity_ciphertext="",
            identity_index=keyring.blind_index(kind="identity", value=identity.legacy_normalised()),
        )
        session.add(subject)
        session.flush()
        subject.identity_ciphertext = subject_keys.seal(
            session=session,
            keyring=keyring,
            subject_id=subject.id,
            table="subject",
            row=subject.id,
            column="identity_ciphertext",
            plaintext=json.dumps(
                {
                    "given_name": identity.given_name,
                    "family_name": identity.family_name,
                    "date_of_birth": identity.date_of_birth.isoformat(),
                }
            ).encode(),
        )
        session.add(subject)
        session.commit()
        return subject.id


def _found(hub: Hub, identity: subjects.Identity) -> str | None:
    with hub.session() as session:
        subject = subjects.find_by_identity(
            session=session, keyring=hub.state.keyring, identity=identity
        )
        return None if subject is None else subject.id


def test_a_subject_indexed_under_the_old_normaliser_is_found_after_reindexing(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    zoe = _old_subject(hub, ZOE)
    other = _old_subject(hub, OTHER)
    # Before: only the exact old form finds her; the form other agencies write does not.
    assert _found(hub, ZOE) == zoe
    assert _found(hub, ZOE_PLAIN) is None
    with hub.session() as session:
        assert reindex.remaining(session=session) == 2
    first = reindex.run_reindex(
        engine=hub.state.engine, keyring=hub.state.keyring, now=_now, batch_size=1, max_batches=1
    )
    assert not first.finished and first.processed == 1
    with hub.session() as session:
        assert reindex.remaining(session=session) == 1
    # Interrupted; `hub keys reindex` resumes the same run and finishes it.
    use_hub_env(hub, monkeypatch)
    resumed = runner.invoke(app, ["keys", "reindex", "--batch-size", "1"])
    assert resumed.exit_code == 0, resumed.output
    assert "reindex (resumed): 2 subjects indexed with normaliser n2 in 2 batches" in (
        resumed.output
    )
    with hub.session() as session:
        assert reindex.remaining(session=session) == 0
        runs = session.exec(select(KeyRotation).where(KeyRotation.purpose == "reindex")).all()
        assert [(r.id, r.status) for r in runs] == [(first.rotation_id, "done")]
        versions = {s.id: s.index_version for s in session.exec(select(Subject)).all()}
        assert versions[zoe] == versions[other] == "n2"
        assert set(versions.values()) == {"n2"}
        # Near matches now work for them too: their single-field indexes exist.
        assert session.get(SubjectFieldIndex, zoe) is not None
    assert _found(hub, ZOE_PLAIN) == zoe
    assert _found(hub, ZOE) == zoe
    assert _found(hub, OTHER) == other
    # A new referral written the other way links to her rather than making a second subject.
    with hub.session() as session:
        linked = subjects.find_or_create(
            session=session,
            keyring=hub.state.keyring,
            identity=ZOE_PLAIN,
            agency_id=SCHOOL,
            local_id=None,
        )
        assert linked.id == zoe
    # Nothing left: a second run does nothing.
    again = runner.invoke(app, ["keys", "reindex"])
    assert again.exit_code == 0 and ": 0 subjects" in again.output


def test_new_subjects_record_the_normaliser_and_shredded_ones_are_only_marked(
    hub: Hub,
) -> None:
    keyring = hub.state.keyring
    with hub.session() as session:
        fresh = subjects.find_or_create(
            session=session, keyring=keyring, identity=OTHER, agency_id=SCHOOL, local_id=None
        )
        assert fresh.index_version == subjects.NORMALISER_VERSION
        session.commit()
    erased = _old_subject(hub, ZOE)
    with hub.session() as session:
        subjects.shred(session=session, keyring=keyring, subject_id=erased)
        session.commit()
    result = reindex.run_reindex(engine=hub.state.engine, keyring=keyring, now=_now)
    assert result.finished and result.processed == 1
    with hub.session() as session:
        row = session.get(Subject, erased)
        assert row is not None and row.index_version == "n2"
        assert row.identity_index == f"shredded:{erased}"
    assert _found(hub, ZOE) is None and _found(hub, ZOE_PLAIN) is None


def test_reindex_refuses_a_batch_size_below_one(hub: Hub) -> None:
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        reindex.run_reindex(
            engine=hub.state.engine, keyring=hub.state.keyring, now=_now, batch_size=0
        )
