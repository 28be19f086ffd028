from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from keys import KeyRing, KeyStoreError, MasterKeyError
from keys._b64 import b64_encode
from keys.hazmat import aes_gcm_encrypt

from .conftest import unseal

AD = b"record:7/name"
WRONG_KEY = bytes(32)


def _reseal(path: Path, master_key: bytes, document: Any) -> None:
    """Replace the keystore with `document`, validly sealed, to reach the parser's checks."""
    path.unlink()
    nonce = bytes(12)
    sealed = aes_gcm_encrypt(
        master_key,
        nonce=nonce,
        plaintext=json.dumps(document).encode(),
        associated_data=b"hub-keystore/v1",
    )
    envelope = {
        "format": "hub-keystore",
        "version": 1,
        "nonce": b64_encode(nonce),
        "ciphertext": b64_encode(sealed),
    }
    path.write_text(json.dumps(envelope))


def _edit_envelope(path: Path, **changes: Any) -> None:
    envelope = json.loads(path.read_bytes())
    envelope.update(changes)
    path.write_text(json.dumps(envelope))


def test_open_round_trip(ring: KeyRing, keystore_path: Path, master_key: bytes) -> None:
    token = ring.encrypt(b"Jane Doe", associated_data=AD)
    again = KeyRing.open(keystore_path, master_key=master_key)
    assert again.decrypt(token, associated_data=AD) == b"Jane Doe"
    assert again.pseudonym(domain="police", value="s") == ring.pseudonym(domain="police", value="s")
    assert again.blind_index(kind="k", value="v") == ring.blind_index(kind="k", value="v")
    assert again.key_ids() == ring.key_ids()
    assert again.token_signing_kid == ring.token_signing_kid
    assert again.token_signing_public_jwk() == ring.token_signing_public_jwk()


def test_open_or_create_creates_then_opens(keystore_path: Path, master_key: bytes) -> None:
    first = KeyRing.open_or_create(keystore_path, master_key=master_key)
    assert keystore_path.exists()
    second = KeyRing.open_or_create(keystore_path, master_key=master_key)
    assert second.key_ids() == first.key_ids()
    assert second.pseudonym(domain="d", value="v") == first.pseudonym(domain="d", value="v")


def test_keystore_file_is_owner_only(ring: KeyRing, keystore_path: Path) -> None:
    assert stat.S_IMODE(keystore_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(keystore_path.parent.stat().st_mode) == 0o700
    # The atomic write leaves no temporary file behind.
    assert [p.name for p in keystore_path.parent.iterdir()] == ["keystore.json"]


def test_keystore_file_holds_no_key_material_in_clear(
    ring: KeyRing, keystore_path: Path, master_key: bytes
) -> None:
    on_disk = keystore_path.read_bytes()
    secrets = [base64.b64decode(k["secret"]) for k in unseal(keystore_path, master_key)["keys"]]
    assert len(secrets) == 6
    for secret in secrets:
        for form in (
            secret,
            secret.hex().encode(),
            base64.b64encode(secret),
            base64.urlsafe_b64encode(secret).rstrip(b"="),
        ):
            assert form not in on_disk
    # Nor the derived forms that leave the keyring.
    pem_body = b"".join(ring.token_signing_private_pem().splitlines()[1:-1])
    assert pem_body not in on_disk
    assert master_key not in on_disk
    assert base64.b64encode(master_key) not in on_disk


def test_open_with_wrong_master_key_fails_and_writes_nothing(
    ring: KeyRing, keystore_path: Path
) -> None:
    before = keystore_path.read_bytes()
    with pytest.raises(MasterKeyError, match="master key does not open keystore"):
        KeyRing.open(keystore_path, master_key=WRONG_KEY)
    with pytest.raises(MasterKeyError, match="master key does not open keystore"):
        KeyRing.open_or_create(keystore_path, master_key=WRONG_KEY)
    assert keystore_path.read_bytes() == before
    assert [p.name for p in keystore_path.parent.iterdir()] == ["keystore.json"]


@pytest.mark.parametrize("size", [0, 16, 31, 33])
def test_master_key_of_wrong_size_is_refused(tmp_path: Path, size: int) -> None:
    path = tmp_path / "keystore.json"
    with pytest.raises(MasterKeyError, match=f"master key must be 32 bytes, got {size}"):
        KeyRing.create(path, master_key=bytes(size))
    with pytest.raises(MasterKeyError, match=f"master key must be 32 bytes, got {size}"):
        KeyRing.open_or_create(path, master_key=bytes(size))
    assert not path.exists()


def test_open_of_a_missing_keystore_fails(tmp_path: Path, master_key: bytes) -> None:
    with pytest.raises(KeyStoreError, match=r"no keystore at .*; create one first"):
        KeyRing.open(tmp_path / "absent.json", master_key=master_key)


def test_create_refuses_to_overwrite(ring: KeyRing, keystore_path: Path, master_key: bytes) -> None:
    before = keystore_path.read_bytes()
    with pytest.raises(KeyStoreError, match="already exists; refusing to overwrite"):
        KeyRing.create(keystore_path, master_key=master_key)
    assert keystore_path.read_bytes() == before


def test_create_refuses_to_overwrite_an_unrelated_file(tmp_path: Path, master_key: bytes) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"precious")
    with pytest.raises(KeyStoreError, match="already exists; refusing to overwrite"):
        KeyRing.create(path, master_key=master_key)
    with pytest.raises(KeyStoreError, match="is corrupt: not JSON"):
        KeyRing.open_or_create(path, master_key=master_key)
    assert path.read_bytes() == b"precious"


def test_create_reports_a_failed_write(
    tmp_path: Path, master_key: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "link", refuse)
    with pytest.raises(KeyStoreError, match=r"cannot write keystore .*Permission denied"):
        KeyRing.create(tmp_path / "keystore.json", master_key=master_key)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is corrupt: not JSON"),
        (b'{"format": "hub-keystore", "vers', "is corrupt: not JSON"),
        (b"\xff\xfe", "is corrupt: not JSON"),
        (b"[]", "is corrupt: top level is not an object"),
        (b'{"format": "other", "version": 1}', "is corrupt: format is not 'hub-keystore'"),
        (b'{"format": "hub-keystore", "version": "1"}', "is corrupt: version is not an integer"),
        (b'{"format": "hub-keystore", "version": true}', "is corrupt: version is not an integer"),
        (b'{"format": "hub-keystore", "version": 1}', "is corrupt: nonce is missing"),
    ],
    ids=[
        "empty",
        "truncated",
        "not-utf8",
        "array",
        "format",
        "version-str",
        "version-bool",
        "nonce",
    ],
)
def test_open_of_a_corrupt_keystore_fails(
    tmp_path: Path, master_key: bytes, content: bytes, message: str
) -> None:
    path = tmp_path / "keystore.json"
    path.write_bytes(content)
    with pytest.raises(KeyStoreError, match=message):
        KeyRing.open(path, master_key=master_key)


def test_open_of_an_unknown_format_version_fails(
    ring: KeyRing, keystore_path: Path, master_key: bytes
) -> None:
    _edit_envelope(keystore_path, version=2)
    with pytest.raises(KeyStoreError, match="has format version 2; this build reads version 1"):
        KeyRing.open(keystore_path, master_key=master_key)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"nonce": "!!"}, "is corrupt: nonce is not base64"),
        ({"nonce": b64_encode(bytes(8))}, "is corrupt: nonce must be 12 bytes, got 8"),
        ({"ciphertext": 5}, "is corrupt: ciphertext is missing or not a string"),
        ({"ciphertext": b64_encode(bytes(4))}, "is corrupt: ciphertext is shorter than its tag"),
    ],
)
def test_open_of_a_damaged_envelope_fails(
    ring: KeyRing, keystore_path: Path, master_key: bytes, changes: dict[str, Any], message: str
) -> None:
    _edit_envelope(keystore_path, **changes)
    with pytest.raises(KeyStoreError, match=message):
        KeyRing.open(keystore_path, master_key=master_key)


def test_open_of_an_altered_ciphertext_fails_authentication(
    ring: KeyRing, keystore_path: Path, master_key: bytes
) -> None:
    envelope = json.loads(keystore_path.read_bytes())
    sealed = bytearray(base64.b64decode(envelope["ciphertext"]))
    sealed[0] ^= 0x80
    _edit_envelope(keystore_path, ciphertext=b64_encode(bytes(sealed)))
    with pytest.raises(MasterKeyError, match="or the file was altered"):
        KeyRing.open(keystore_path, master_key=master_key)


def _valid_keys(path: Path, master_key: bytes) -> list[dict[str, str]]:
    keys: list[dict[str, str]] = unseal(path, master_key)["keys"]
    return keys


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda keys: {"keys": "none"}, "sealed body has no key list"),
        (lambda keys: [keys], "sealed body has no key list"),
        (lambda keys: {"keys": [*keys, 7]}, "key 6 is not an object"),
        (lambda keys: {"keys": [{**keys[0], "kid": None}]}, "key 0 field 'kid' is missing"),
        (lambda keys: {"keys": [{**keys[0], "secret": "%%"}]}, "key 0 field secret is not base64"),
        (lambda keys: {"keys": [*keys, keys[0]]}, "duplicate key id"),
        (lambda keys: {"keys": keys[1:]}, "no 'pseudonym-root' key"),
        (
            lambda keys: {
                "keys": [*keys[:2], {**keys[2], "secret": b64_encode(bytes(16))}, keys[3]]
            },
            "data-encryption key dek-v1-[0-9a-f]{8} is not 32 bytes",
        ),
        (
            lambda keys: {"keys": [*keys[:3], {**keys[3], "secret": b64_encode(bytes(32))}]},
            "token-signing key tok-v1-[0-9a-f]{8} is not a P-256 key",
        ),
        (
            lambda keys: {"keys": [*keys[:3], {**keys[3], "kid": "tok-v1-00000000"}]},
            "token-signing key id tok-v1-00000000 does not match its key",
        ),
    ],
    ids=[
        "keys-not-list",
        "body-not-object",
        "entry-not-object",
        "missing-field",
        "secret-not-base64",
        "duplicate-kid",
        "missing-purpose",
        "short-data-key",
        "bad-signing-scalar",
        "signing-kid-mismatch",
    ],
)
def test_open_of_a_malformed_sealed_body_fails(
    ring: KeyRing, keystore_path: Path, master_key: bytes, edit: Any, message: str
) -> None:
    _reseal(keystore_path, master_key, edit(_valid_keys(keystore_path, master_key)))
    with pytest.raises(KeyStoreError, match=message):
        KeyRing.open(keystore_path, master_key=master_key)


def test_open_ignores_keys_of_purposes_it_does_not_know(
    ring: KeyRing, keystore_path: Path, master_key: bytes
) -> None:
    # A later build may add purposes (as checkpoint signing was); this build must still read it.
    keys = _valid_keys(keystore_path, master_key)
    extra = {**keys[0], "purpose": "witness-cosigning", "kid": "wit-v1-00000000"}
    _reseal(keystore_path, master_key, {"keys": [*keys, extra]})
    again = KeyRing.open(keystore_path, master_key=master_key)
    assert again.pseudonym(domain="d", value="v") == ring.pseudonym(domain="d", value="v")
    assert len(again.key_ids()) == 7
