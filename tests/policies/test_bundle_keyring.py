"""`hub policy bundle | verify-bundle` with the keyring's bundle-signing key: signed by
default with its kid, verified with current and previous keys after a rotation, and no longer
verified once the signing key is retired."""

from __future__ import annotations

import base64
import io
import json
import tarfile
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from hub.cli_policy import policy_app
from hub.config import Settings
from hub.policy.bundle import SIGNATURES, verify_bundle
from keys import KeyRing

runner = CliRunner()
app = typer.Typer()
app.add_typer(policy_app, name="policy")
MASTER_KEY = bytes(range(32))


@pytest.fixture
def keystore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("HUB_MASTER_KEY", base64.b64encode(MASTER_KEY).decode())
    path = Settings().keystore_path
    KeyRing.create(path, master_key=MASTER_KEY)
    return path


def _bundle(out: Path, *extra: str) -> str:
    result = runner.invoke(app, ["policy", "bundle", str(out), *extra])
    assert result.exit_code == 0, result.output
    return result.output


def _verify(bundle: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(app, ["policy", "verify-bundle", str(bundle), *extra])
    return result.exit_code, result.output


def _signature_kid(bundle: Path) -> str:
    with tarfile.open(bundle, "r:gz") as tar:
        member = tar.extractfile(f"/{SIGNATURES}") or tar.extractfile(SIGNATURES)
        assert member is not None
        token = json.loads(member.read())["signatures"][0]
    header = token.split(".")[0]
    kid: str = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    return kid


def test_bundles_are_signed_with_the_keyring_key_and_its_kid(
    keystore: Path, tmp_path: Path
) -> None:
    ring = KeyRing.open(keystore, master_key=MASTER_KEY)
    out, public = tmp_path / "b.tar.gz", tmp_path / "bundle.pub.pem"
    output = _bundle(out, "--public-key-out", str(public))
    assert f"signed with key id {ring.bundle_signing_kid}" in output
    assert _signature_kid(out) == ring.bundle_signing_kid
    # What OPA would be configured with verifies it, independently of the keyring.
    assert public.read_bytes() == ring.bundle_verifying_keys()[0][1]
    assert verify_bundle(out, public_key_pem=public.read_bytes(), key_id=ring.bundle_signing_kid)
    code, output = _verify(out)
    assert code == 0, output
    assert f"signed by {ring.bundle_signing_kid}" in output


def test_old_bundles_verify_after_rotation_and_not_after_retirement(
    keystore: Path, tmp_path: Path
) -> None:
    old_kid = KeyRing.open(keystore, master_key=MASTER_KEY).bundle_signing_kid
    old_bundle, new_bundle = tmp_path / "old.tar.gz", tmp_path / "new.tar.gz"
    _bundle(old_bundle)
    rotated = KeyRing.rotate(keystore, master_key=MASTER_KEY, purpose="bundle-signing")
    _bundle(new_bundle)
    assert _signature_kid(new_bundle) == rotated.bundle_signing_kid != old_kid
    for bundle, kid in ((old_bundle, old_kid), (new_bundle, rotated.bundle_signing_kid)):
        code, output = _verify(bundle)
        assert code == 0, output
        assert f"signed by {kid}" in output
    KeyRing.retire(keystore, master_key=MASTER_KEY, purpose="bundle-signing", version="v1")
    code, output = _verify(old_bundle)
    assert code == 1
    assert "bundle verification failed: the bundle signature does not verify" in output
    assert _verify(new_bundle)[0] == 0


def test_a_tampered_keyring_signed_bundle_is_refused(keystore: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.tar.gz"
    _bundle(out)
    with tarfile.open(out, "r:gz") as tar:
        members = [(m, tar.extractfile(m)) for m in tar.getmembers()]
        files = {m.name: (f.read() if f else b"") for m, f in members}
    name = next(n for n in files if n.endswith(".rego"))
    files[name] += b"\n# changed\n"
    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(tampered, "w:gz") as tar:
        for member_name, content in files.items():
            info = tarfile.TarInfo(member_name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    code, output = _verify(tampered)
    assert code == 1 and "bundle verification failed" in output


def test_bundle_options_that_exclude_each_other(keystore: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.tar.gz"
    result = runner.invoke(
        app, ["policy", "bundle", str(out), "--unsigned", "--signing-key", str(keystore)]
    )
    assert result.exit_code == 1 and "exclude each other" in result.output
    result = runner.invoke(app, ["policy", "bundle", str(out), "--key-id", "mine"])
    assert result.exit_code == 1 and "the keyring names its own" in result.output
    assert not out.exists()


def test_without_a_keyring_the_bundle_command_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("HUB_MASTER_KEY", base64.b64encode(MASTER_KEY).decode())
    result = runner.invoke(app, ["policy", "bundle", str(tmp_path / "b.tar.gz")])
    assert result.exit_code == 1
    assert "has `hub init` been run" in result.output
