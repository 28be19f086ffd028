"""Checkpoints: signed over the stored tree, one per size, made on demand, every N entries and
for receipts; all kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from sqlmodel import Session

from hub.audit.notes import CheckpointSigner, origin_for
from hub.audit.verifier import Checkpoint, VerificationFailed, VerifierKey
from hub.config import Settings
from hub.errors import AuditUnavailable
from hub.services import audit_checkpoints, audit_tree
from keys import KeyRing
from keys._keystore import read_keystore

from .conftest import ORIGIN, T0, append_entries


def _sizes(engine: Engine) -> list[int]:
    with Session(engine) as session:
        return [c.tree_size for c in audit_checkpoints.all_in_order(session=session)]


def test_an_on_demand_checkpoint_signs_the_stored_root(
    engine: Engine, signer: CheckpointSigner
) -> None:
    append_entries(engine, 5)
    with Session(engine) as session:
        made = audit_checkpoints.checkpoint_now(session=session, signer=signer, now=T0)
        parsed = Checkpoint.from_text(made.note, key=signer.verifier_key, origin=ORIGIN)
        assert parsed.tree_size == 5
        assert parsed.root_hash == audit_tree.root_at(session, 5)
        assert made.note.startswith(f"{ORIGIN}\n5\n")
        # Asking again at the same size gives the same stored checkpoint.
        again = audit_checkpoints.checkpoint_now(session=session, signer=signer, now=T0)
        assert again.note == made.note
    assert _sizes(engine) == [5]


def test_every_nth_entry_is_checkpointed_and_missed_ones_are_caught_up(
    engine: Engine, signer: CheckpointSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_checkpoints, "CHECKPOINT_EVERY", 4)
    append_entries(engine, 9, signer=signer)
    assert _sizes(engine) == [4, 8]
    append_entries(engine, 9)  # appends without a signer leave 12 and 16 to the next signer
    with Session(engine) as session:
        audit_checkpoints.checkpoint_now(session=session, signer=signer, now=T0)
    assert _sizes(engine) == [4, 8, 12, 16, 18]


def test_covering_uses_the_first_checkpoint_that_includes_the_leaf(
    engine: Engine, signer: CheckpointSigner
) -> None:
    append_entries(engine, 3)
    with Session(engine) as session:
        first = audit_checkpoints.covering(session=session, signer=signer, index=1, now=T0)
        assert first.tree_size == 3
    append_entries(engine, 2)
    with Session(engine) as session:
        assert audit_checkpoints.covering(session=session, signer=signer, index=2, now=T0) == first
        assert (
            audit_checkpoints.covering(session=session, signer=signer, index=3, now=T0).tree_size
            == 5
        )


def test_a_checkpoint_from_another_key_or_origin_is_refused(
    engine: Engine, signer: CheckpointSigner
) -> None:
    append_entries(engine, 2)
    with Session(engine) as session:
        note = audit_checkpoints.checkpoint_now(session=session, signer=signer, now=T0).note
    other = CheckpointSigner(origin=ORIGIN, private_key=Ed25519PrivateKey.generate())
    with pytest.raises(VerificationFailed, match=r"no signature by key hub\.test/audit"):
        Checkpoint.from_text(note, key=other.verifier_key)
    with pytest.raises(VerificationFailed, match="does not verify"):
        Checkpoint.from_text(note.replace("\n2\n", "\n3\n", 1), key=signer.verifier_key)
    with pytest.raises(VerificationFailed, match="expected 'elsewhere/audit'"):
        Checkpoint.from_text(note, key=signer.verifier_key, origin="elsewhere/audit")
    renamed = VerifierKey.for_ed25519(
        name="elsewhere/audit", public_key=signer.verifier_key.public_key
    )
    with pytest.raises(VerificationFailed, match="no signature by key elsewhere/audit"):
        Checkpoint.from_text(note, key=renamed)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hub.test/audit\n5\n", "origin, tree size and root"),
        ("hub.test/audit\n05\nAAAA\n", "without leading zeros"),
        ("hub.test/audit\n5\nAAAA\n", "root hash has wrong length"),
        ("hub.test/audit\n-1\nAAAA\n", "without leading zeros"),
    ],
)
def test_malformed_checkpoint_bodies_are_refused(
    signer: CheckpointSigner, text: str, message: str
) -> None:
    with pytest.raises(VerificationFailed, match=message):
        Checkpoint.from_text(signer.sign(text), key=signer.verifier_key)


def test_the_origin_is_the_public_url_without_its_scheme() -> None:
    assert origin_for("https://hub.example.org/") == "hub.example.org/audit"
    assert origin_for("http://127.0.0.1:8000") == "127.0.0.1:8000/audit"
    assert origin_for("https://example.org/hub") == "example.org/hub/audit"
    with pytest.raises(ValueError, match="no host"):
        origin_for("https://")


def test_signer_needs_the_checkpoint_key(tmp_path: Path) -> None:
    path = tmp_path / "keystore.json"
    ring = KeyRing.create(path, master_key=bytes(32))
    assert audit_checkpoints.signer_for(keyring=ring, settings=Settings()).origin == (
        "127.0.0.1:8000/audit"
    )
    # A keystore written before checkpoint signing existed.
    old = KeyRing(
        [k for k in read_keystore(path, master_key=bytes(32)) if k.purpose != "checkpoint-signing"]
    )
    with pytest.raises(AuditUnavailable, match=r"checkpoints cannot be signed: .* run `hub init`"):
        audit_checkpoints.signer_for(keyring=old, settings=Settings())
    keys, origin = audit_checkpoints.verifier_keys(keyring=old, settings=Settings())
    assert (keys, origin) == ([], "127.0.0.1:8000/audit")
