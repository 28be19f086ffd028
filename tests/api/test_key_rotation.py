"""Rotation without loss: data-encryption (re-wrap, re-encrypt, resume), token signing (JWKS
keeps the old key), pseudonym roots (v2, with v1 still resolving), and the `hub keys` commands."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, SQLModel, select
from typer.testing import CliRunner

from hub.cli import app
from hub.services import admin, key_rotation, subject_keys, subjects
from hub.storage.models import (
    AgencyWebhook,
    Case,
    KeyRotation,
    Subject,
    SubjectKey,
    SubjectLocalId,
)
from keys import KeyRing
from tests.api.conftest import SCHOOL, Hub
from tests.api.flows import refer_alex, use_hub_env
from tests.api.test_isolation import northtown_records

runner = CliRunner()


def _master_key(hub: Hub) -> bytes:
    assert hub.settings.master_key is not None
    return base64.b64decode(hub.settings.master_key.get_secret_value())


def _now() -> datetime:
    return datetime.now(UTC)


def _add_legacy_subject(hub: Hub, session: Session) -> str:
    """A subject written before per-subject keys: every value sealed under the keyring."""
    keyring = hub.state.keyring
    subject = Subject(identity_ciphertext="", identity_index=f"legacy-{os.urandom(4).hex()}")
    session.add(subject)
    session.flush()
    subject.identity_ciphertext = keyring.encrypt(
        json.dumps(
            {"given_name": "Zoë", "family_name": "O'Brien", "date_of_birth": "2009-01-02"}
        ).encode(),
        associated_data=f"subject/{subject.id}/identity".encode(),
    )
    link = SubjectLocalId(
        subject_id=subject.id, agency_id=SCHOOL, local_id_ciphertext="", local_id_index="legacy"
    )
    link.local_id_ciphertext = keyring.encrypt(
        b"LEG-1", associated_data=f"subject_local_id/{link.id}/local_id".encode()
    )
    session.add(link)
    session.commit()
    return subject.id


def _snapshot(session: Session, keyring: KeyRing) -> dict[str, Any]:
    """Every encrypted column, decrypted, keyed by table and row."""
    seen: dict[str, Any] = {}
    for subject in session.exec(select(Subject)).all():
        seen[f"subject/{subject.id}"] = subjects.identity_of(keyring, subject)
        seen[f"local/{subject.id}"] = subjects.local_ids(
            session=session, keyring=keyring, subject_id=subject.id
        )
    for case in session.exec(select(Case)).all():
        seen[f"case/{case.id}"] = subjects.case_summary(session=session, keyring=keyring, case=case)
    for hook in session.exec(select(AgencyWebhook)).all():
        seen[f"hook/{hook.agency_id}"] = keyring.decrypt(
            hook.secret_ciphertext,
            associated_data=f"agency/{hook.agency_id}/webhook_secret".encode(),
        )
    return seen


def _tokens(session: Session) -> list[str]:
    tokens: list[str] = []
    tokens += [s.identity_ciphertext for s in session.exec(select(Subject)).all()]
    tokens += [link.local_id_ciphertext for link in session.exec(select(SubjectLocalId)).all()]
    tokens += [
        c.summary_ciphertext for c in session.exec(select(Case)).all() if c.summary_ciphertext
    ]
    tokens += [h.secret_ciphertext for h in session.exec(select(AgencyWebhook)).all()]
    tokens += [k.wrapped_key for k in session.exec(select(SubjectKey)).all()]
    return tokens


def _prepare(hub: Hub) -> tuple[str, str]:
    refer_alex(hub)
    with hub.session() as session:
        legacy = _add_legacy_subject(hub, session)
        admin.set_agency_webhook(
            session=session,
            keyring=hub.state.keyring,
            agency_id=SCHOOL,
            url="https://school.example/hooks",
            secret="whsec_" + base64.b64encode(os.urandom(32)).decode(),
            now=_now(),
        )
        session.commit()
    return hub.state.keyring.data_key_kid, legacy


def test_every_encrypted_column_survives_a_data_key_rotation(hub: Hub) -> None:
    old_kid, legacy = _prepare(hub)
    with hub.session() as session:
        before = _snapshot(session, hub.state.keyring)
    rotated = KeyRing.rotate(
        hub.settings.keystore_path,
        master_key=_master_key(hub),
        purpose="data-encryption",
        now=_now(),
    )
    assert rotated.data_key_kid != old_kid
    with hub.session() as session:
        todo = key_rotation.remaining(session=session, keyring=rotated)
    result = key_rotation.run_data_key_rotation(
        engine=hub.state.engine, keyring=rotated, now=_now, batch_size=3
    )
    assert result.finished and not result.resumed
    assert result.processed == todo > 0
    with hub.session() as session:
        assert key_rotation.remaining(session=session, keyring=rotated) == 0
    with hub.session() as session:
        # Nothing lost: every value reads the same, through the rotated keyring.
        assert _snapshot(session, rotated) == before
        # Nothing left under the old key, and the legacy subject is now under its own key.
        for token in _tokens(session):
            assert KeyRing.token_kid(token) in (None, rotated.data_key_kid)
            assert old_kid not in token
        subject = session.get(Subject, legacy)
        assert subject is not None and subject.identity_ciphertext.startswith("sk1.")
        assert {k.kek_kid for k in session.exec(select(SubjectKey)).all()} == {rotated.data_key_kid}
    # The serving hub's keyring takes in the new key on its own when it meets it.
    with hub.session() as session:
        assert _snapshot(session, hub.state.keyring) == before
    assert hub.state.keyring.data_key_kid == rotated.data_key_kid


def test_an_interrupted_rotation_resumes_where_it_stopped(hub: Hub) -> None:
    _prepare(hub)
    with hub.session() as session:
        before = _snapshot(session, hub.state.keyring)
        total = len(session.exec(select(SubjectKey)).all())
    rotated = KeyRing.rotate(
        hub.settings.keystore_path,
        master_key=_master_key(hub),
        purpose="data-encryption",
        now=_now(),
    )
    first = key_rotation.run_data_key_rotation(
        engine=hub.state.engine, keyring=rotated, now=_now, batch_size=1, max_batches=2
    )
    assert not first.finished and first.processed == 2
    with hub.session() as session:
        unfinished = key_rotation.running(session=session)
        assert unfinished is not None and unfinished.target_kid == rotated.data_key_kid
        kids = [k.kek_kid for k in session.exec(select(SubjectKey)).all()]
        assert kids.count(rotated.data_key_kid) == 2 < total
        # Mid-rotation, everything still reads.
        assert _snapshot(session, rotated) == before
    second = key_rotation.run_data_key_rotation(
        engine=hub.state.engine, keyring=rotated, now=_now, batch_size=50
    )
    assert second.resumed and second.finished
    assert second.rotation_id == first.rotation_id
    assert second.processed > first.processed
    with hub.session() as session:
        assert key_rotation.running(session=session) is None
        rows = session.exec(select(KeyRotation)).all()
        assert [(r.status, r.target_kid) for r in rows] == [("done", rotated.data_key_kid)]
        assert _snapshot(session, rotated) == before
        for token in _tokens(session):
            assert KeyRing.token_kid(token) in (None, rotated.data_key_kid)


def test_a_rotation_refuses_a_batch_size_below_one(hub: Hub) -> None:
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        key_rotation.run_data_key_rotation(
            engine=hub.state.engine, keyring=hub.state.keyring, now=_now, batch_size=0
        )


def test_jwks_serves_old_and_new_signing_keys_and_old_tokens_still_verify(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    old_headers = hub.agency_headers(SCHOOL)
    old_kid = hub.state.keyring.token_signing_kid
    rotated = KeyRing.rotate(
        hub.settings.keystore_path, master_key=_master_key(hub), purpose="token-signing"
    )
    assert rotated.token_signing_kid != old_kid
    assert rotated.token_signing_kid.startswith("tok-v2-")
    # The token signed before the rotation carries the old kid; the serving hub finds it, and
    # in doing so takes in the new key.
    assert hub.client.get(f"/v1/cases/{case_id}", headers=old_headers).status_code == 200
    hub.state.keyring.refresh(force=True)
    jwks = hub.client.get("/.well-known/jwks.json").json()
    assert [k["kid"] for k in jwks["keys"]] == [rotated.token_signing_kid, old_kid]
    new_headers = hub.agency_headers(SCHOOL)
    assert hub.client.get(f"/v1/cases/{case_id}", headers=new_headers).status_code == 200
    assert new_headers != old_headers


def test_a_token_naming_an_unknown_signing_key_is_refused(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    headers = hub.agency_headers(SCHOOL)
    token = headers["Authorization"].removeprefix("Bearer ")
    header, rest = token.split(".", 1)
    fields = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    fields["kid"] = "tok-v9-00000000"
    forged = base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")
    response = hub.client.get(
        f"/v1/cases/{case_id}", headers={"Authorization": f"Bearer {forged}.{rest}"}
    )
    assert response.status_code == 401


def test_pseudonym_root_rotation_makes_v2_and_keeps_v1(hub: Hub) -> None:
    keyring = hub.state.keyring
    old = keyring.pseudonym(domain="agency:x", value="subject-1")
    rotated = KeyRing.rotate(
        hub.settings.keystore_path, master_key=_master_key(hub), purpose="pseudonym-root"
    )
    new = rotated.pseudonym(domain="agency:x", value="subject-1")
    assert old.startswith("v1.") and new.startswith("v2.")
    assert rotated.pseudonyms(domain="agency:x", value="subject-1") == {"v2": new, "v1": old}


def test_hub_keys_rotate_and_list(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    _prepare(hub)
    use_hub_env(hub, monkeypatch)
    rotated = runner.invoke(app, ["keys", "rotate", "kek", "--batch-size", "2"])
    assert rotated.exit_code == 0, rotated.output
    assert "now writes" in rotated.output
    assert "items now under dek-v2-" in rotated.output
    listed = runner.invoke(app, ["keys", "list"])
    assert listed.exit_code == 0, listed.output
    lines = [line.split() for line in listed.output.splitlines()]
    dek = [line for line in lines if line[0] == "data-encryption"]
    assert [(line[2], line[3]) for line in dek] == [("v2", "current"), ("v1", "previous")]
    with hub.session() as session:
        for token in _tokens(session):
            assert KeyRing.token_kid(token) in (None, dek[0][1])
    bad = runner.invoke(app, ["keys", "rotate", "session-cookie"])
    assert bad.exit_code == 1
    assert "unknown key kind 'session-cookie'" in bad.output


def test_subject_keys_associated_data_names_table_row_and_column() -> None:
    assert subject_keys.associated_data(table="t", row="r", column="c") == b"hub/v2/t/r/c"


def _retire(kind: str, version: str) -> Any:
    return runner.invoke(app, ["keys", "retire", kind, version])


def test_a_data_key_is_retired_only_once_nothing_is_under_it(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_kid, _legacy = _prepare(hub)
    use_hub_env(hub, monkeypatch)
    with hub.session() as session:
        before = _snapshot(session, hub.state.keyring)
    refused = _retire("data-encryption", "v1")
    assert refused.exit_code == 1
    assert "is the current key; rotate first" in refused.output
    rotated = KeyRing.rotate(
        hub.settings.keystore_path, master_key=_master_key(hub), purpose="data-encryption"
    )
    # Rotated but not yet re-encrypted: retiring now would make the old values unreadable.
    refused = _retire("kek", "v1")
    assert refused.exit_code == 1
    assert f"stored items are still under {old_kid}" in refused.output
    key_rotation.run_data_key_rotation(engine=hub.state.engine, keyring=rotated, now=_now)
    retired = _retire("kek", "v1")
    assert retired.exit_code == 0, retired.output
    assert f"key {old_kid} (v1) retired at " in retired.output
    listed = runner.invoke(app, ["keys", "list"])
    rows = {tuple(line.split()[:4]): line.split()[4:] for line in listed.output.splitlines()}
    (dates,) = [d for k, d in rows.items() if k[0] == "data-encryption" and k[2] == "v1"]
    assert ("data-encryption", old_kid, "v1", "retired") in rows
    assert dates[1] != "-" and dates[1] >= dates[0]
    # Nothing was lost: a keyring that no longer uses the retired key reads everything.
    fresh = KeyRing.open(hub.settings.keystore_path, master_key=_master_key(hub))
    with hub.session() as session:
        assert _snapshot(session, fresh) == before


def test_a_token_key_is_retired_after_its_tokens_expire_and_leaves_the_jwks(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_hub_env(hub, monkeypatch)
    old_kid = hub.state.keyring.token_signing_kid
    KeyRing.rotate(hub.settings.keystore_path, master_key=_master_key(hub), purpose="token-signing")
    refused = _retire("token-signing", "v1")
    assert refused.exit_code == 1
    assert f"tokens signed by {old_kid} may still be valid until" in refused.output
    # Checkpoint keys verify the log's history and are never retired.
    KeyRing.rotate(
        hub.settings.keystore_path, master_key=_master_key(hub), purpose="checkpoint-signing"
    )
    never = _retire("checkpoint-signing", "v1")
    assert never.exit_code == 1 and "never retired" in never.output


def test_a_token_key_replaced_long_ago_is_retired_and_unpublished(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = refer_alex(hub)["id"]
    use_hub_env(hub, monkeypatch)
    old_headers = hub.agency_headers(SCHOOL)
    old_kid = hub.state.keyring.token_signing_kid
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    KeyRing.rotate(
        hub.settings.keystore_path,
        master_key=_master_key(hub),
        purpose="token-signing",
        now=long_ago,
    )
    retired = _retire("token-signing", "v1")
    assert retired.exit_code == 0, retired.output
    hub.state.keyring.refresh(force=True)
    kids = [k["kid"] for k in hub.client.get("/.well-known/jwks.json").json()["keys"]]
    assert old_kid not in kids and len(kids) == 1
    # A token the retired key signed no longer opens anything; a new one does.
    assert hub.client.get(f"/v1/cases/{case_id}", headers=old_headers).status_code == 401
    new_headers = hub.agency_headers(SCHOOL)
    assert hub.client.get(f"/v1/cases/{case_id}", headers=new_headers).status_code == 200


def test_every_encrypted_column_is_covered_by_rotation() -> None:
    # A new `*_ciphertext` column fails here until rotation re-encrypts it.
    columns = {
        (table.name, column.name)
        for table in SQLModel.metadata.sorted_tables
        for column in table.columns
        if column.name.endswith("_ciphertext")
    }
    under_subject_keys = {
        *subject_keys.LEGACY_AD,
        ("reidentification_request", "reason_ciphertext"),
    }
    under_keyring = {(s.model.__tablename__, s.column) for s in key_rotation.KEYRING_SEALED}
    assert columns == under_subject_keys | under_keyring


def _keyring_sealed(session: Session, keyring: KeyRing) -> dict[str, tuple[str | None, bytes]]:
    """Every keyring-sealed value: the key id it is under, and what it opens to."""
    found: dict[str, tuple[str | None, bytes]] = {}
    for sealed in key_rotation.KEYRING_SEALED:
        for row in session.exec(select(sealed.model)).all():
            token = getattr(row, sealed.column)
            if token is not None:
                plain = keyring.decrypt(token, associated_data=sealed.associated_data(row))
                name = f"{sealed.model.__tablename__}/{getattr(row, sealed.key)}/{sealed.column}"
                found[name] = (KeyRing.token_kid(token), plain)
    return found


def test_notes_and_reasons_sealed_under_the_keyring_survive_a_rotation(hub: Hub) -> None:
    records = northtown_records(hub)
    coordinator, dpo = hub.user_headers("coordinator"), hub.user_headers("dpo")
    refused = hub.client.post(
        f"/v1/access-requests/{records['request_id']}/decision",
        headers=coordinator,
        json={"decision": "refuse", "reason": "Not needed for the plan."},
    )
    assert refused.status_code == 200, refused.text
    reviewed = hub.client.post(
        f"/v1/break-glass/{records['window_id']}/review",
        headers=dpo,
        json={"justified": True, "note": "Threat was credible."},
    )
    assert reviewed.status_code == 200, reviewed.text
    withdrawn = hub.client.post(
        f"/v1/consents/{records['consent_id']}/withdraw",
        headers=coordinator,
        json={"reason": "Parent withdrew by phone."},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    old_kid = hub.state.keyring.data_key_kid
    with hub.session() as session:
        before = _keyring_sealed(session, hub.state.keyring)
    tables = {name.split("/")[0] + "/" + name.split("/")[2] for name in before}
    assert tables == {
        "access_request/justification_ciphertext",
        "access_request/reason_ciphertext",
        "break_glass/review_note_ciphertext",
        "consent_change/reason_ciphertext",
    }
    assert {kid for kid, _ in before.values()} == {old_kid}
    rotated = KeyRing.rotate(
        hub.settings.keystore_path, master_key=_master_key(hub), purpose="data-encryption"
    )
    key_rotation.run_data_key_rotation(engine=hub.state.engine, keyring=rotated, now=_now)
    with hub.session() as session:
        after = _keyring_sealed(session, rotated)
        assert key_rotation.still_under(session=session, kid=old_kid) == 0
    assert {name: plain for name, (_, plain) in after.items()} == {
        name: plain for name, (_, plain) in before.items()
    }
    assert {kid for kid, _ in after.values()} == {rotated.data_key_kid}
