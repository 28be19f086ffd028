"""The audit log over HTTP and on the command line: checkpoint, proofs, key, receipts,
export; every answer checked with the standalone verifier, every bad parameter a 4xx in the
project's error shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hub.audit.verifier import (
    Checkpoint,
    VerifierKey,
    verify_consistency,
    verify_export,
    verify_inclusion,
    verify_receipt,
)
from hub.cli_audit import audit_app
from tests.api.conftest import Hub

runner = CliRunner()


def _key(hub: Hub) -> VerifierKey:
    response = hub.client.get("/v1/audit/key")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return VerifierKey.from_text(response.text)


def _dpo(hub: Hub) -> dict[str, str]:
    return hub.user_headers("dpo")


def _cli(hub: Hub, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    settings = hub.settings
    monkeypatch.setenv("HUB_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("HUB_DATABASE_URL", str(settings.database_url))
    assert settings.master_key is not None
    monkeypatch.setenv("HUB_MASTER_KEY", settings.master_key.get_secret_value())
    result = runner.invoke(audit_app, list(args))
    return result.exit_code, result.output


def test_the_latest_checkpoint_is_a_signed_note(
    disclosed: tuple[Hub, list[dict[str, Any]]],
) -> None:
    hub, answers = disclosed
    assert hub.client.get("/v1/audit/checkpoint").status_code == 401

    response = hub.client.get("/v1/audit/checkpoint", headers=_dpo(hub))

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    checkpoint = Checkpoint.from_text(response.text, key=_key(hub))
    assert checkpoint.origin == "127.0.0.1:8000/audit"
    assert checkpoint.tree_size >= answers[-1]["audit_index"]


def test_no_checkpoint_yet_is_a_404(hub: Hub) -> None:
    response = hub.client.get("/v1/audit/checkpoint", headers=_dpo(hub))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_proofs_from_the_api_verify_against_signed_checkpoints(
    disclosed: tuple[Hub, list[dict[str, Any]]],
) -> None:
    hub, answers = disclosed
    key = _key(hub)
    first = Checkpoint.from_text(answers[0]["receipt"]["checkpoint"], key=key)
    latest = Checkpoint.from_text(
        hub.client.get("/v1/audit/checkpoint", headers=_dpo(hub)).text, key=key
    )
    index = answers[0]["receipt"]["index"]

    inclusion = hub.client.get(
        "/v1/audit/proofs/inclusion",
        params={"index": index, "tree_size": latest.tree_size},
        headers=hub.agency_headers("northtown-academy"),
    ).json()
    consistency = hub.client.get(
        "/v1/audit/proofs/consistency",
        params={"first": first.tree_size, "second": latest.tree_size},
        headers=_dpo(hub),
    ).json()

    assert inclusion["leaf_hash"] == answers[0]["receipt"]["leaf_hash"]
    verify_inclusion(
        index=index,
        tree_size=latest.tree_size,
        leaf=_b64(inclusion["leaf_hash"]),
        proof=[_b64(h) for h in inclusion["hashes"]],
        root=latest.root_hash,
    )
    verify_consistency(
        first=first.tree_size,
        second=latest.tree_size,
        first_root=first.root_hash,
        second_root=latest.root_hash,
        proof=[_b64(h) for h in consistency["hashes"]],
    )


def _b64(text: str) -> bytes:
    import base64

    return base64.b64decode(text)


@pytest.mark.parametrize(
    ("path", "params", "code", "message"),
    [
        ("inclusion", {"index": 99, "tree_size": 3}, "bad_request", "leaf index must be between"),
        ("inclusion", {"index": 0, "tree_size": 10**6}, "bad_request", "tree size must be"),
        ("inclusion", {"index": -1, "tree_size": 3}, "invalid_request", "does not match"),
        ("inclusion", {"index": "x", "tree_size": 3}, "invalid_request", "does not match"),
        ("inclusion", {"tree_size": 3}, "invalid_request", "does not match"),
        ("consistency", {"first": 3, "second": 2}, "bad_request", "first tree size must be"),
        ("consistency", {"first": 1, "second": 10**6}, "bad_request", "tree size must be"),
        ("consistency", {"first": 1}, "invalid_request", "does not match"),
    ],
)
def test_bad_proof_parameters_are_4xx_in_the_error_shape(
    disclosed: tuple[Hub, list[dict[str, Any]]],
    path: str,
    params: dict[str, Any],
    code: str,
    message: str,
) -> None:
    hub, _ = disclosed
    response = hub.client.get(f"/v1/audit/proofs/{path}", params=params, headers=_dpo(hub))
    assert 400 <= response.status_code < 500
    error = response.json()["error"]
    assert error["code"] == code
    assert message in error["message"]
    assert set(error) >= {"code", "message", "details"}


def test_every_receipt_verifies_offline(disclosed: tuple[Hub, list[dict[str, Any]]]) -> None:
    hub, answers = disclosed
    key = _key(hub)
    for answer in answers:
        receipt = verify_receipt(answer["receipt"], key=key, origin="127.0.0.1:8000/audit")
        assert receipt.index == answer["audit_index"] - 1
        assert receipt.decision_id == answer["decision_id"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(decision_id="someone-else"), "'decision_id' does not match"),
        (lambda r: r.update(index=r["index"] - 1), "'index' does not match"),
        (lambda r: r["inclusion_proof"].reverse(), "does not lead to the root"),
        (lambda r: r.update(statement=r["statement"].replace("index", "Index")), "does not verify"),
        (lambda r: r.update(checkpoint=r["statement"]), "not a decimal number"),
    ],
    ids=["decision", "index", "proof", "statement", "swapped-notes"],
)
def test_an_altered_receipt_does_not_verify(
    disclosed: tuple[Hub, list[dict[str, Any]]],
    change: Any,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hub.audit.verifier import VerificationFailed

    hub, answers = disclosed
    receipt = json.loads(json.dumps(answers[1]["receipt"]))
    receipt["inclusion_proof"] = receipt["inclusion_proof"] or [receipt["leaf_hash"]]
    change(receipt)
    with pytest.raises(VerificationFailed, match=message):
        verify_receipt(receipt, key=_key(hub))
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt))
    code, output = _cli(hub, monkeypatch, "verify-receipt", str(path))
    assert code == 1
    assert "receipt does not verify" in output


def test_cli_verify_receipt_accepts_a_saved_answer(
    disclosed: tuple[Hub, list[dict[str, Any]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, answers = disclosed
    path = tmp_path / "answer.json"
    path.write_text(json.dumps(answers[2]))
    key = _key(hub).to_text()

    for args in (["verify-receipt", str(path)], ["verify-receipt", str(path), "--key", key]):
        code, output = _cli(hub, monkeypatch, *args)
        assert code == 0, output
        assert (
            f"decision {answers[2]['decision_id']} is entry {answers[2]['audit_index']}" in output
        )


def test_cli_checkpoint_prove_key_and_verify(
    disclosed: tuple[Hub, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, _ = disclosed
    code, vkey = _cli(hub, monkeypatch, "key")
    assert code == 0
    key = VerifierKey.from_text(vkey)

    code, note = _cli(hub, monkeypatch, "checkpoint")
    assert code == 0, note
    checkpoint = Checkpoint.from_text(note, key=key)

    code, output = _cli(hub, monkeypatch, "prove", "--index", "2")
    assert code == 0, output
    proof = json.loads(output)
    assert proof["tree_size"] == checkpoint.tree_size
    verify_inclusion(
        index=2,
        tree_size=checkpoint.tree_size,
        leaf=_b64(proof["leaf_hash"]),
        proof=[_b64(h) for h in proof["hashes"]],
        root=checkpoint.root_hash,
    )
    code, output = _cli(hub, monkeypatch, "prove", "--first", "3")
    assert code == 0, output
    assert json.loads(output)["second"] == checkpoint.tree_size

    code, output = _cli(hub, monkeypatch, "prove")
    assert code == 1
    assert "give either --index" in output
    code, output = _cli(hub, monkeypatch, "prove", "--index", "5000")
    assert code == 1
    assert "leaf index must be between" in output

    code, output = _cli(hub, monkeypatch, "verify")
    assert code == 0, output
    assert f"audit log verifies: {checkpoint.tree_size} entries, head " in output


def test_cli_verify_checks_a_held_checkpoint(
    disclosed: tuple[Hub, list[dict[str, Any]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, answers = disclosed
    held = tmp_path / "held.txt"
    held.write_text(answers[0]["receipt"]["checkpoint"])
    code, output = _cli(hub, monkeypatch, "verify", "--against", str(held))
    assert code == 0, output


def test_export_verifies_with_the_standalone_verifier(
    disclosed: tuple[Hub, list[dict[str, Any]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, answers = disclosed
    key = _key(hub)
    whole, part = tmp_path / "all.jsonl", tmp_path / "part.jsonl"
    since = answers[1]["audit_index"]

    assert _cli(hub, monkeypatch, "export", "--output", str(whole))[0] == 0
    assert _cli(hub, monkeypatch, "export", "--since", str(since), "--output", str(part))[0] == 0

    with whole.open() as handle:
        report = verify_export(handle, key=key)
    assert report.first_seq == 1
    with part.open() as handle:
        partial = verify_export(handle, key=key)
    assert (partial.first_seq, partial.last_seq) == (since, report.last_seq)
    assert partial.head_hash == report.head_hash
    exported = part.read_text()
    for secret in ("Alex", "Example", "2011-03-14", "NA-2231"):
        assert secret not in exported

    code, output = _cli(hub, monkeypatch, "export", "--since", "100000")
    assert code == 1
    assert "export range must be within" in output


def test_dpo_verify_endpoint_checks_signatures(
    disclosed: tuple[Hub, list[dict[str, Any]]],
) -> None:
    hub, answers = disclosed
    response = hub.client.get("/v1/audit/verify", headers=_dpo(hub))
    assert response.status_code == 200, response.text
    assert response.json()["entries"] >= answers[-1]["audit_index"]
    denied = hub.client.get("/v1/audit/verify", headers=hub.user_headers("coordinator"))
    assert denied.status_code == 403
