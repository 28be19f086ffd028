"""The Ed25519 checkpoint-signing key: made with every new keystore, added to an older one by
`open_or_create` without touching its other keys, and refused when malformed."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from keys import KeyRing, KeyStoreError
from keys._b64 import b64_encode
from keys.hazmat import aes_gcm_encrypt

from .conftest import unseal

AD = b"record:1/name"


def _reseal(path: Path, master_key: bytes, document: Any) -> None:
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


def _make_old_keystore(path: Path, master_key: bytes) -> KeyRing:
    """A keystore as a build before checkpoint signing wrote it: the first four purposes."""
    ring = KeyRing.create(path, master_key=master_key)
    later = ("checkpoint-signing", "bundle-signing")
    keys = [k for k in unseal(path, master_key)["keys"] if k["purpose"] not in later]
    _reseal(path, master_key, {"keys": keys})
    return ring


def test_a_new_keystore_has_a_checkpoint_key_that_signs(ring: KeyRing) -> None:
    public = Ed25519PublicKey.from_public_bytes(ring.checkpoint_signing_public())
    signature = ring.checkpoint_signing_private().sign(b"note text\n")
    public.verify(signature, b"note text\n")
    fingerprint = hashlib.sha256(ring.checkpoint_signing_public()).hexdigest()[:8]
    assert ring.checkpoint_signing_kid == f"ckp-v1-{fingerprint}"
    assert ring.checkpoint_verifying_keys() == [ring.checkpoint_signing_public()]


def test_an_old_keystore_still_opens_and_says_what_is_missing(
    keystore_path: Path, master_key: bytes
) -> None:
    old = _make_old_keystore(keystore_path, master_key)
    token = old.encrypt(b"x", associated_data=AD)

    ring = KeyRing.open(keystore_path, master_key=master_key)

    assert ring.decrypt(token, associated_data=AD) == b"x"
    assert not ring.has_checkpoint_signing_key
    assert ring.checkpoint_verifying_keys() == []
    with pytest.raises(KeyStoreError, match="no 'checkpoint-signing' key; run `hub init`"):
        ring.checkpoint_signing_private()
    with pytest.raises(KeyStoreError, match="no 'checkpoint-signing' key"):
        ring.checkpoint_signing_public()


def test_open_or_create_adds_the_missing_key_and_keeps_the_others(
    keystore_path: Path, master_key: bytes
) -> None:
    old = _make_old_keystore(keystore_path, master_key)
    token = old.encrypt(b"kept", associated_data=AD)
    before = unseal(keystore_path, master_key)["keys"]

    ring = KeyRing.open_or_create(keystore_path, master_key=master_key)

    after = unseal(keystore_path, master_key)["keys"]
    assert after[:4] == before
    assert [k["purpose"] for k in after[4:]] == ["checkpoint-signing", "bundle-signing"]
    assert keystore_path.stat().st_mode & 0o777 == 0o600
    assert ring.decrypt(token, associated_data=AD) == b"kept"
    assert ring.pseudonym(domain="d", value="v") == old.pseudonym(domain="d", value="v")
    again = KeyRing.open(keystore_path, master_key=master_key)
    assert again.checkpoint_signing_public() == ring.checkpoint_signing_public()
    # A second call finds the key and changes nothing.
    snapshot = keystore_path.read_bytes()
    KeyRing.open_or_create(keystore_path, master_key=master_key)
    assert keystore_path.read_bytes() == snapshot


def test_concurrent_upgrades_add_exactly_one_key(keystore_path: Path, master_key: bytes) -> None:
    _make_old_keystore(keystore_path, master_key)
    publics: list[bytes] = []

    def upgrade() -> None:
        publics.append(
            KeyRing.open_or_create(keystore_path, master_key=master_key).checkpoint_signing_public()
        )

    threads = [threading.Thread(target=upgrade) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    stored = [
        k for k in unseal(keystore_path, master_key)["keys"] if k["purpose"] == "checkpoint-signing"
    ]
    assert len(stored) == 1
    stored_public = KeyRing.open(keystore_path, master_key=master_key).checkpoint_signing_public()
    assert set(publics) == {stored_public}


def test_a_checkpoint_key_of_the_wrong_size_is_refused(
    ring: KeyRing, keystore_path: Path, master_key: bytes
) -> None:
    keys = unseal(keystore_path, master_key)["keys"]
    keys[4] = {**keys[4], "secret": base64.b64encode(bytes(16)).decode()}
    _reseal(keystore_path, master_key, {"keys": keys})
    with pytest.raises(KeyStoreError, match=r"checkpoint-signing key ckp-v1-[0-9a-f]{8} is not a"):
        KeyRing.open(keystore_path, master_key=master_key)
