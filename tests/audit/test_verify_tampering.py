"""`verify` recomputes chain, tree and checkpoints and names the first bad entry for every kind
of tampering an operator with database access could try, on SQLite and PostgreSQL."""

from __future__ import annotations

import sys

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from hub.audit.notes import CheckpointSigner
from hub.audit.verifier import (
    Checkpoint,
    VerificationFailed,
    chain_hash,
    entry_bytes,
    leaf_hash,
    verify_consistency,
)
from hub.errors import VerificationError
from hub.services import audit, audit_checkpoints, audit_tree
from hub.services.audit_verify import VerifyReport
from hub.storage.models import AuditEntry
from tests.audit.tampering import rewrite_history, tamper

from .conftest import ORIGIN, T0, append_entries

SIZE = 12
_INSERT_ENTRY = (
    "INSERT INTO audit_entry (seq, at, kind, body, prev_hash, entry_hash) "
    "VALUES (:seq, :at, 'disclosure', :body, :prev, :hash)"
)


def _forged_row(*, seq: int, prev_hash: str) -> dict[str, object]:
    """An entry with a valid chain link, as anyone can compute one."""
    body = '{"decision":"allow","decision_id":"forged"}'
    data = entry_bytes(seq=seq, kind="disclosure", at=audit.rfc3339(T0), body=body)
    return {
        "seq": seq,
        "at": T0.replace(tzinfo=None),
        "body": body,
        "prev": prev_hash,
        "hash": chain_hash(prev_hash=prev_hash, entry=data),
        "leaf": leaf_hash(data).hex(),
    }


def _verify(engine: Engine, signer: CheckpointSigner, held: tuple[str, ...] = ()) -> VerifyReport:
    with Session(engine) as session:
        return audit.verify(
            session=session, keys=[signer.verifier_key], origin=ORIGIN, held=held, batch=5
        )


def _checkpoint(engine: Engine, signer: CheckpointSigner) -> str:
    with Session(engine) as session:
        return audit_checkpoints.checkpoint_now(session=session, signer=signer, now=T0).note


@pytest.fixture
def log(engine: Engine, signer: CheckpointSigner) -> Engine:
    """12 entries with checkpoints at 4, 9 and 12."""
    append_entries(engine, 4)
    _checkpoint(engine, signer)
    append_entries(engine, 5)
    _checkpoint(engine, signer)
    append_entries(engine, 3)
    _checkpoint(engine, signer)
    return engine


def _fails(engine: Engine, signer: CheckpointSigner, message: str, **kwargs: object) -> None:
    with pytest.raises(VerificationError, match=message) as raised:
        _verify(engine, signer, **kwargs)  # type: ignore[arg-type]
    assert "Alex" not in raised.value.message


def test_an_untouched_log_verifies(log: Engine, signer: CheckpointSigner) -> None:
    report = _verify(log, signer)
    assert (report.entries, report.checkpoints, report.signatures_checked) == (SIZE, 3, True)
    with Session(log) as session:
        assert report.root_hash == audit_tree.root_at(session, SIZE).hex()


def test_a_changed_entry_is_named(log: Engine, signer: CheckpointSigner) -> None:
    tamper(log, "UPDATE audit_entry SET body = replace(body, 'allow', 'deny') WHERE seq = 5")
    _fails(log, signer, r"^entry 5 has been altered")


def test_a_changed_entry_with_a_recomputed_chain_is_named_by_its_leaf(
    log: Engine, signer: CheckpointSigner
) -> None:
    with Session(log) as session:
        entry = session.get(AuditEntry, 5)
    assert entry is not None
    body = entry.body.replace('"n":4', '"n":40')
    new_hash = chain_hash(
        prev_hash=entry.prev_hash,
        entry=entry_bytes(seq=5, kind=entry.kind, at=audit.rfc3339(entry.at), body=body),
    )
    tamper(
        log,
        [
            (
                "UPDATE audit_entry SET body = :body, entry_hash = :hash WHERE seq = 5",
                {"body": body, "hash": new_hash},
            ),
            ("UPDATE audit_entry SET prev_hash = :hash WHERE seq = 6", {"hash": new_hash}),
        ],
    )
    # The chain alone would only break at entry 6 (its hash covers its old link); the stored
    # leaf hash names entry 5 itself.
    _fails(log, signer, r"^entry 5 does not match its leaf in the tree")


def test_a_deleted_entry_is_named(log: Engine, signer: CheckpointSigner) -> None:
    tamper(log, "DELETE FROM audit_entry WHERE seq = 7")
    _fails(log, signer, r"^entry 7 is missing \(next stored entry is 8\)")


def test_an_inserted_entry_is_named(log: Engine, signer: CheckpointSigner) -> None:
    with Session(log) as session:
        before = session.get(AuditEntry, 6)
    assert before is not None
    row = _forged_row(seq=7, prev_hash=before.entry_hash)
    tamper(
        log,
        [
            # Make room: every later entry moves up by one, then the forged entry goes in.
            "UPDATE audit_entry SET seq = -seq - 1 WHERE seq >= 7",
            "UPDATE audit_entry SET seq = -seq WHERE seq < 0",
            (_INSERT_ENTRY, row),
        ],
    )
    _fails(log, signer, r"^entry 7 does not match its leaf in the tree")


def test_reordered_entries_are_named(log: Engine, signer: CheckpointSigner) -> None:
    tamper(
        log,
        "UPDATE audit_entry SET seq = -1 WHERE seq = 3;"
        "UPDATE audit_entry SET seq = 3 WHERE seq = 4;"
        "UPDATE audit_entry SET seq = 4 WHERE seq = -1",
    )
    _fails(log, signer, r"^entry 3 does not link to entry 2")


def test_a_truncated_log_is_found_against_the_latest_checkpoint(
    log: Engine, signer: CheckpointSigner
) -> None:
    # A careful operator removes the entries, their tree nodes and resets the cursor.
    tamper(
        log,
        [
            "DELETE FROM audit_entry WHERE seq > 10",
            "DELETE FROM audit_node WHERE complete_at > 10",
            "UPDATE audit_head SET size = 10",
        ],
    )
    _fails(
        log,
        signer,
        r"^the log is truncated: checkpoint at tree size 12 covers 12 entries but the log ends "
        r"at entry 10; entry 11 is missing",
    )


def test_a_truncated_log_is_found_by_its_cursor_without_a_checkpoint(
    engine: Engine, signer: CheckpointSigner
) -> None:
    append_entries(engine, 6)
    tamper(engine, "DELETE FROM audit_entry WHERE seq > 4")
    _fails(engine, signer, r"^the log is truncated: its cursor is at 6 .* entry 5 is missing")


def test_an_entry_not_appended_through_the_log_is_named(
    log: Engine, signer: CheckpointSigner
) -> None:
    with Session(log) as session:
        last = session.get(AuditEntry, SIZE)
    assert last is not None
    row = _forged_row(seq=SIZE + 1, prev_hash=last.entry_hash)
    tamper(
        log,
        [
            (_INSERT_ENTRY, row),
            (
                "INSERT INTO audit_node (level, idx, digest, complete_at) "
                "VALUES (0, :idx, :digest, :size)",
                {"idx": SIZE, "digest": row["leaf"], "size": SIZE + 1},
            ),
        ],
    )
    _fails(log, signer, rf"^entry {SIZE + 1} was not appended through the log")


def test_a_rewritten_history_forks_from_the_checkpoints_made_before(
    log: Engine, signer: CheckpointSigner
) -> None:
    with Session(log) as session:
        old_note = audit_checkpoints.at_size(session=session, tree_size=9)
    assert old_note is not None
    rewrite_history(log, seq=6, old='"allow"', new='"deny"')
    append_entries(log, 2)
    new_note = _checkpoint(log, signer)  # the hub signs the rewritten tree, unaware

    _fails(
        log,
        signer,
        r"^checkpoint at tree size 9 does not match the log: entries 5..9 no longer produce its "
        r"root, so the log forks from it \(first entry that may differ: 5\)",
    )
    # Anyone holding both checkpoints sees the fork too: no consistency proof exists.
    old = Checkpoint.from_text(old_note.note, key=signer.verifier_key)
    new = Checkpoint.from_text(new_note, key=signer.verifier_key)
    with Session(log) as session:
        proof = audit_tree.consistency_proof(session, first=9, second=new.tree_size)
    with pytest.raises(VerificationFailed, match="does not match the root of tree size 9"):
        verify_consistency(
            first=9,
            second=new.tree_size,
            first_root=old.root_hash,
            second_root=new.root_hash,
            proof=proof,
        )


def test_a_checkpoint_held_outside_exposes_a_rewrite_that_hid_its_traces(
    log: Engine, signer: CheckpointSigner
) -> None:
    with Session(log) as session:
        held = audit_checkpoints.at_size(session=session, tree_size=9)
    assert held is not None
    rewrite_history(log, seq=4, old='"deny"', new='"allow"')
    tamper(log, "DELETE FROM audit_checkpoint")
    assert _verify(log, signer).entries == SIZE  # nothing left inside the hub to tell

    _fails(
        log,
        signer,
        r"^held checkpoint 1 \(tree size 9\) does not match the log: entries 1..9",
        held=(held.note,),
    )


def test_an_altered_tree_node_is_named(log: Engine, signer: CheckpointSigner) -> None:
    tamper(log, f"UPDATE audit_node SET digest = '{'0' * 64}' WHERE level = 2 AND idx = 1")
    _fails(log, signer, r"^tree node over entries 5..8 does not match them")


def test_a_tree_node_filed_under_another_tree_size_is_named(
    log: Engine, signer: CheckpointSigner
) -> None:
    # Same level, index and digest: only the tree size it is stored under moved.
    tamper(log, "UPDATE audit_node SET complete_at = 8 WHERE level = 0 AND idx = 6")
    _fails(log, signer, r"^entry 7: its tree node at level 0 is missing")


def test_a_stray_tree_node_is_named(log: Engine, signer: CheckpointSigner) -> None:
    tamper(
        log,
        f"INSERT INTO audit_node (level, idx, digest, complete_at) VALUES (5, 0, '{'0' * 64}', 7)",
    )
    _fails(log, signer, r"^entry 7: the tree has an extra node at level 5")


def test_digests_shifted_between_two_tree_nodes_are_named(
    log: Engine, signer: CheckpointSigner
) -> None:
    # Joined, the two digests read the same; each alone is wrong.
    if log.dialect.name == "postgresql":
        pytest.skip("PostgreSQL refuses a digest longer than 64 characters")
    with log.connect() as conn:
        first, second = (
            conn.execute(
                text("SELECT digest FROM audit_node WHERE level = 0 AND idx = :idx"), {"idx": idx}
            ).scalar_one()
            for idx in (1, 2)
        )
    tamper(
        log,
        [
            (
                "UPDATE audit_node SET digest = :digest WHERE level = 0 AND idx = :idx",
                {"digest": digest, "idx": idx},
            )
            for idx, digest in ((1, first + second[:1]), (2, second[1:]))
        ],
    )
    _fails(log, signer, r"^entry 2 does not match its leaf in the tree")


def test_an_entry_holding_a_control_character_is_named(
    log: Engine, signer: CheckpointSigner
) -> None:
    tamper(
        log,
        [
            (
                "UPDATE audit_entry SET kind = :kind WHERE seq = 6",
                {"kind": "disclosure\x1fdisclosure"},
            )
        ],
    )
    _fails(log, signer, r"^entry 6 has been altered")


def test_a_whole_log_read_in_one_batch_verifies_and_a_change_is_named(
    log: Engine, signer: CheckpointSigner
) -> None:
    with Session(log) as session:
        report = audit.verify(session=session, keys=[signer.verifier_key], batch=1000)
    assert (report.entries, report.checkpoints) == (SIZE, 3)
    tamper(log, "UPDATE audit_entry SET body = replace(body, 'allow', 'deny') WHERE seq = 11")
    with Session(log) as session, pytest.raises(VerificationError, match=r"^entry 11 has been"):
        audit.verify(session=session, keys=[signer.verifier_key], batch=1000)


def test_an_altered_checkpoint_row_is_named(log: Engine, signer: CheckpointSigner) -> None:
    tamper(log, f"UPDATE audit_checkpoint SET root_hash = '{'0' * 64}' WHERE tree_size = 9")
    _fails(log, signer, r"^checkpoint at tree size 9 was altered")


def test_a_checkpoint_signed_by_another_key_is_named(log: Engine, signer: CheckpointSigner) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    forger = CheckpointSigner(origin=ORIGIN, private_key=Ed25519PrivateKey.generate())
    with Session(log) as session:
        root = audit_tree.root_at(session, 10)
    tamper(
        log,
        [
            (
                "INSERT INTO audit_checkpoint (tree_size, root_hash, note, made_at) "
                "VALUES (10, :root, :note, :at)",
                {
                    "root": root.hex(),
                    "note": forger.checkpoint(tree_size=10, root=root),
                    "at": T0.replace(tzinfo=None),
                },
            )
        ],
    )
    _fails(log, signer, r"^checkpoint at tree size 10 does not verify: note has no signature")


def test_without_keys_the_report_says_signatures_were_not_checked(log: Engine) -> None:
    with Session(log) as session:
        report = audit.verify(session=session)
    assert report.entries == SIZE
    assert not report.signatures_checked


def test_progress_is_reported_per_batch(log: Engine, signer: CheckpointSigner) -> None:
    seen: list[int] = []
    with Session(log) as session:
        audit.verify(session=session, keys=[signer.verifier_key], batch=5, progress=seen.append)
    assert seen == [5, 5, 2]


def test_an_empty_log_verifies(engine: Engine, signer: CheckpointSigner) -> None:
    report = _verify(engine, signer)
    assert (report.entries, report.head_hash) == (0, "0" * 64)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT size FROM audit_head")).scalar_one() == 0


def test_verifying_leaves_the_thread_switch_interval_as_it_was(
    log: Engine, signer: CheckpointSigner
) -> None:
    before = sys.getswitchinterval()
    _verify(log, signer)
    assert sys.getswitchinterval() == before
    tamper(log, "UPDATE audit_entry SET body = replace(body, 'allow', 'deny') WHERE seq = 5")
    _fails(log, signer, r"^entry 5 has been altered")
    assert sys.getswitchinterval() == before
