"""`hub policy test | bundle | verify-bundle`, mounted as hub/cli.py mounts them."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from typer.testing import CliRunner

import policies
from hub.cli_policy import policy_app
from hub.policy import discover_rego_tests

runner = CliRunner()
app = typer.Typer()
app.add_typer(policy_app, name="policy")

FAILING_POLICY = """package hub.sample

allow := true
"""

FAILING_TESTS = """package hub.sample_test

import data.hub.sample

test_allows if sample.allow

test_denies if not sample.allow
"""


@pytest.fixture(scope="module")
def key_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("keys")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private, public = folder / "bundle.key.pem", folder / "bundle.pub.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


@pytest.mark.parametrize("command", [[], ["test"], ["bundle"], ["verify-bundle"]])
def test_help(command: list[str]) -> None:
    result = runner.invoke(app, ["policy", *command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.stdout


def test_policy_test_passes() -> None:
    result = runner.invoke(app, ["policy", "test"])
    rules = [r for _path, text in policies.test_modules() for r in discover_rego_tests(text)]
    lines = result.stdout.splitlines()
    assert lines[-1] == f"{len(rules)} passed, 0 failed"
    assert sorted(lines[:-1]) == sorted(f"PASS {rule}" for rule in rules)
    assert result.exit_code == 0


def test_policy_test_reports_a_failing_test(tmp_path: Path) -> None:
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "sample.rego").write_text(FAILING_POLICY)
    (tmp_path / "hub" / "sample_test.rego").write_text(FAILING_TESTS)
    result = runner.invoke(app, ["policy", "test", "--policies", str(tmp_path)])
    lines = result.stdout.splitlines()
    assert "PASS data.hub.sample_test.test_allows" in lines
    assert "FAIL data.hub.sample_test.test_denies" in lines
    assert lines[-1] == "1 passed, 1 failed"
    assert result.exit_code == 1


def test_policy_test_with_no_tests(tmp_path: Path) -> None:
    (tmp_path / "sample.rego").write_text(FAILING_POLICY)
    result = runner.invoke(app, ["policy", "test", "--policies", str(tmp_path)])
    assert result.stdout.splitlines()[-1] == "0 passed, 0 failed"
    assert "error: no Rego tests found" in result.stderr
    assert result.exit_code == 1


def test_policy_test_with_broken_policies(tmp_path: Path) -> None:
    (tmp_path / "sample.rego").write_text("package hub.sample\n\nallow if {\n")
    (tmp_path / "sample_test.rego").write_text(FAILING_TESTS)
    result = runner.invoke(app, ["policy", "test", "--policies", str(tmp_path)])
    assert "error: the policies do not load" in result.stderr
    assert result.exit_code == 1


def test_policy_test_with_bad_data(tmp_path: Path) -> None:
    (tmp_path / "data.json").write_text("{")
    result = runner.invoke(app, ["policy", "test", "--policies", str(tmp_path)])
    assert "error: data.json is not valid JSON" in result.stderr
    assert result.exit_code == 1


def test_bundle_round_trip(tmp_path: Path, key_files: tuple[Path, Path]) -> None:
    private, public = key_files
    out = tmp_path / "bundle.tar.gz"
    built = runner.invoke(
        app, ["policy", "bundle", str(out), "--signing-key", str(private), "--key-id", "k1"]
    )
    assert built.exit_code == 0, built.stderr
    assert f"revision {policies.revision()}" in built.stdout
    assert "signed with key id k1" in built.stdout
    verified = runner.invoke(
        app, ["policy", "verify-bundle", str(out), "--public-key", str(public), "--key-id", "k1"]
    )
    assert verified.exit_code == 0, verified.stderr
    assert verified.stdout.startswith(f"OK revision {policies.revision()}")


def test_unsigned_bundle_from_a_folder(tmp_path: Path, key_files: tuple[Path, Path]) -> None:
    folder = tmp_path / "policies"
    (folder / "hub").mkdir(parents=True)
    (folder / "hub" / "sample.rego").write_text(FAILING_POLICY)
    (folder / "hub" / "sample_test.rego").write_text(FAILING_TESTS)
    out = tmp_path / "bundle.tar.gz"
    built = runner.invoke(
        app, ["policy", "bundle", str(out), "--unsigned", "--policies", str(folder)]
    )
    assert built.exit_code == 0, built.stderr
    assert "2 files, unsigned" in built.stdout
    with tarfile.open(out) as tar:
        assert sorted(tar.getnames()) == ["/.manifest", "/hub/sample.rego"]
    verified = runner.invoke(
        app, ["policy", "verify-bundle", str(out), "--public-key", str(key_files[1])]
    )
    assert "error: bundle verification failed: the bundle has no .signatures.json" in (
        verified.stderr
    )
    assert verified.exit_code == 1


def test_verify_bundle_refuses_a_tampered_bundle(
    tmp_path: Path, key_files: tuple[Path, Path]
) -> None:
    private, public = key_files
    out = tmp_path / "bundle.tar.gz"
    assert (
        runner.invoke(app, ["policy", "bundle", str(out), "--signing-key", str(private)]).exit_code
        == 0
    )
    with tarfile.open(out) as tar:
        members = {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar
            if m.isfile()
        }
    members["/hub/decision.rego"] += b"\n# changed\n"
    with tarfile.open(out, mode="w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    result = runner.invoke(app, ["policy", "verify-bundle", str(out), "--public-key", str(public)])
    assert "'hub/decision.rego' does not match its hash" in result.stderr
    assert result.exit_code == 1


def test_bundle_with_an_unreadable_key(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["policy", "bundle", str(tmp_path / "b.tar.gz"), "--signing-key", str(tmp_path / "no")]
    )
    assert "error: cannot read the signing key" in result.stderr
    assert result.exit_code == 1


def test_bundle_with_a_bad_key(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("not a key")
    result = runner.invoke(
        app, ["policy", "bundle", str(tmp_path / "b.tar.gz"), "--signing-key", str(key)]
    )
    assert "error: the signing key is not an unencrypted PEM private key" in result.stderr
    assert result.exit_code == 1
