"""Per-subject data keys: values sealed under them, bound to their place, and crypto-shredding."""

from __future__ import annotations

import base64
import json

import pytest
from sqlmodel import select

from hub.errors import SubjectErased
from hub.services import subject_keys, subjects
from hub.storage.models import Case, Subject, SubjectKey, SubjectLocalId
from keys import DecryptionError, KeyRing
from tests.api.conftest import Hub
from tests.api.flows import refer_alex


def _master_key(hub: Hub) -> bytes:
    assert hub.settings.master_key is not None
    return base64.b64decode(hub.settings.master_key.get_secret_value())


def test_subject_values_are_sealed_under_the_subjects_own_key(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    with hub.session() as session:
        case = session.get(Case, case_id)
        assert case is not None
        subject = session.get(Subject, case.subject_id)
        assert subject is not None
        key_row = session.get(SubjectKey, subject.id)
        assert key_row is not None
        assert key_row.kek_kid == hub.state.keyring.data_key_kid
        links = session.exec(
            select(SubjectLocalId).where(SubjectLocalId.subject_id == subject.id)
        ).all()
        tokens = [subject.identity_ciphertext, case.summary_ciphertext]
        for token in tokens + [link.local_id_ciphertext for link in links]:
            assert token is not None and token.startswith("sk1.")
            assert "Alex" not in token
        identity = subjects.identity_of(hub.state.keyring, subject)
        assert identity.given_name == "Alex"
        local = subjects.local_ids(
            session=session, keyring=hub.state.keyring, subject_id=subject.id
        )
        assert "NA-2231" in local.values()
    shown = hub.client.get(f"/v1/cases/{case_id}", headers=hub.user_headers("coordinator"))
    assert shown.status_code == 200, shown.text
    assert shown.json()["summary"].startswith("Concern raised")


def test_a_value_moved_to_another_row_or_column_fails_to_open(hub: Hub) -> None:
    keyring = hub.state.keyring
    first = refer_alex(hub)["id"]
    with hub.session() as session:
        case = session.get(Case, first)
        assert case is not None and case.summary_ciphertext is not None
        subject = session.get(Subject, case.subject_id)
        assert subject is not None

        def open_(table: str, row: str, column: str, token: str) -> bytes:
            return subject_keys.open_value(
                session=session,
                keyring=keyring,
                subject_id=subject.id,
                table=table,
                row=row,
                column=column,
                token=token,
            )

        assert open_("case", case.id, "summary_ciphertext", case.summary_ciphertext)
        with pytest.raises(DecryptionError, match="authentication failed"):
            open_("case", "another-case", "summary_ciphertext", case.summary_ciphertext)
        with pytest.raises(DecryptionError, match="authentication failed"):
            open_("case", case.id, "other_column", case.summary_ciphertext)
        with pytest.raises(DecryptionError, match="authentication failed"):
            open_("subject", subject.id, "identity_ciphertext", case.summary_ciphertext)


def test_values_sealed_under_another_subjects_key_fail_to_open(hub: Hub) -> None:
    keyring = hub.state.keyring
    with hub.session() as session:
        one = Subject(identity_ciphertext="", identity_index="one")
        two = Subject(identity_ciphertext="", identity_index="two")
        session.add(one)
        session.add(two)
        session.flush()
        subject_keys.data_key(session=session, keyring=keyring, subject_id=two.id, create=True)
        token = subject_keys.seal(
            session=session,
            keyring=keyring,
            subject_id=one.id,
            table="t",
            row="r",
            column="c",
            plaintext=b"secret",
        )
        with pytest.raises(DecryptionError, match="authentication failed"):
            subject_keys.open_value(
                session=session,
                keyring=keyring,
                subject_id=two.id,
                table="t",
                row="r",
                column="c",
                token=token,
            )
        session.rollback()


def test_values_written_under_the_keyring_before_subject_keys_still_open(hub: Hub) -> None:
    keyring = hub.state.keyring
    with hub.session() as session:
        subject = Subject(identity_ciphertext="", identity_index="legacy")
        session.add(subject)
        session.flush()
        plaintext = json.dumps(
            {"given_name": "Zoë", "family_name": "O'Brien", "date_of_birth": "2009-01-02"}
        ).encode()
        subject.identity_ciphertext = keyring.encrypt(
            plaintext, associated_data=f"subject/{subject.id}/identity".encode()
        )
        assert subjects.identity_of(keyring, subject).given_name == "Zoë"
        session.rollback()


def test_shredded_identity_is_unrecoverable_even_with_keystore_and_master_key(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    with hub.session() as session:
        case = session.get(Case, case_id)
        assert case is not None
        subject_id = case.subject_id
        subject = session.get(Subject, subject_id)
        assert subject is not None
        before = subject.identity_ciphertext
        subjects.shred(session=session, keyring=hub.state.keyring, subject_id=subject_id)
        session.commit()
    reopened = KeyRing.open(hub.settings.keystore_path, master_key=_master_key(hub))
    with hub.session() as session:
        subject = session.get(Subject, subject_id)
        assert subject is not None
        assert session.get(SubjectKey, subject_id) is None
        with pytest.raises(SubjectErased, match="data key no longer exists"):
            subjects.identity_of(reopened, subject)
        with pytest.raises(SubjectErased, match="data key no longer exists"):
            subjects.local_ids(session=session, keyring=reopened, subject_id=subject_id)
        # A copy of the ciphertext taken before shredding (a backup, say) opens under no key
        # the keyring holds: it was sealed under the destroyed subject key only.
        subject.identity_ciphertext = before
        with pytest.raises(SubjectErased, match="data key no longer exists"):
            subjects.identity_of(reopened, subject)
        with pytest.raises(DecryptionError):
            reopened.decrypt(before, associated_data=f"subject/{subject_id}/identity".encode())
        session.rollback()
    # The case still answers, without its free text, and never with a server error.
    shown = hub.client.get(f"/v1/cases/{case_id}", headers=hub.user_headers("coordinator"))
    assert shown.status_code == 200, shown.text
    assert shown.json()["summary"] is None


def test_a_shredded_subject_gets_no_new_key_and_new_referrals_do_not_link(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    with hub.session() as session:
        case = session.get(Case, case_id)
        assert case is not None
        subject_id = case.subject_id
        subjects.shred(session=session, keyring=hub.state.keyring, subject_id=subject_id)
        subjects.shred(session=session, keyring=hub.state.keyring, subject_id=subject_id)
        session.commit()
        with pytest.raises(SubjectErased, match="data key no longer exists"):
            subject_keys.seal(
                session=session,
                keyring=hub.state.keyring,
                subject_id=subject_id,
                table="t",
                row="r",
                column="c",
                plaintext=b"x",
            )
    again = refer_alex(hub)
    with hub.session() as session:
        case = session.get(Case, again["id"])
        assert case is not None
        assert case.subject_id != subject_id


def test_a_remembered_key_is_unwrapped_once_and_forgotten_after_its_block(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = refer_alex(hub)["id"]
    keyring = hub.state.keyring
    unwraps: list[bytes] = []
    unwrap = KeyRing.unwrap_data_key

    def counting(self: KeyRing, wrapped: str, *, associated_data: bytes) -> object:
        unwraps.append(associated_data)
        return unwrap(self, wrapped, associated_data=associated_data)

    monkeypatch.setattr(KeyRing, "unwrap_data_key", counting)
    with hub.session() as session:
        case = session.get(Case, case_id)
        assert case is not None
        subject = session.get(Subject, case.subject_id)
        assert subject is not None
        with subject_keys.keys_remembered(session):
            assert subjects.identity_of(keyring, subject).given_name == "Alex"
            local = subjects.local_ids(session=session, keyring=keyring, subject_id=subject.id)
            assert "NA-2231" in local.values()
            assert len(unwraps) == 1
        # Outside the block the key is unwrapped again: nothing was kept, so deleting the
        # wrapped key (crypto-shredding) is not outlived by a copy in memory.
        subjects.identity_of(keyring, subject)
        assert len(unwraps) == 2
        row = session.get(SubjectKey, subject.id)
        session.delete(row)
        session.flush()
        with pytest.raises(SubjectErased):
            subjects.identity_of(keyring, subject)
