"""KeyRing rotation, per-subject data keys and refreshing from the keystore."""

from __future__ import annotations

from pathlib import Path

import pytest
from jose import jwt

from keys import DataKey, DecryptionError, KeyRing, KeyStoreError


def test_rotation_adds_a_writer_and_keeps_every_reader(
    ring: KeyRing, keystore_path: Path, master_key: bytes
) -> None:
    token = ring.encrypt(b"x", associated_data=b"ad")
    rotated = KeyRing.rotate(keystore_path, master_key=master_key, purpose="data-encryption")
    assert rotated.data_key_kid.startswith("dek-v2-")
    assert rotated.decrypt(token, associated_data=b"ad") == b"x"
    assert KeyRing.token_kid(rotated.encrypt(b"y", associated_data=b"ad")) == rotated.data_key_kid
    states = [(k["purpose"], k["version"], k["state"]) for k in rotated.key_ids()]
    assert ("data-encryption", "v2", "current") in states
    assert ("data-encryption", "v1", "previous") in states
    again = KeyRing.rotate(keystore_path, master_key=master_key, purpose="data-encryption")
    assert again.data_key_kid.startswith("dek-v3-")


def test_an_unknown_purpose_cannot_be_rotated(
    ring: KeyRing, keystore_path: Path, master_key: bytes
) -> None:
    before = keystore_path.read_bytes()
    with pytest.raises(ValueError, match="cannot be rotated"):
        KeyRing.rotate(keystore_path, master_key=master_key, purpose="session-cookie")
    assert keystore_path.read_bytes() == before


def test_a_blind_index_rotation_writes_under_v2_and_still_looks_up_under_v1(
    ring: KeyRing, keystore_path: Path, master_key: bytes
) -> None:
    serving = KeyRing.open(keystore_path, master_key=master_key)
    old = ring.blind_index(kind="identity", value="zoe|obrien|2009-01-02")
    assert ring.blind_index_version == "v1" and ring.blind_index_kid.startswith("bix-v1-")

    rotated = KeyRing.rotate(keystore_path, master_key=master_key, purpose="blind-index")

    assert rotated.blind_index_version == "v2" and rotated.blind_index_kid.startswith("bix-v2-")
    new = rotated.blind_index(kind="identity", value="zoe|obrien|2009-01-02")
    assert new != old
    assert rotated.blind_index(kind="identity", value="zoe|obrien|2009-01-02", version="v1") == old
    # Every version held, the writer first: what lookups try during the re-indexing.
    assert rotated.blind_indexes(kind="identity", value="zoe|obrien|2009-01-02") == {
        "v2": new,
        "v1": old,
    }
    # Kinds stay unrelated under the new key too.
    assert rotated.blind_index(kind="local-id", value="zoe|obrien|2009-01-02") != new
    states = [(k["purpose"], k["version"], k["state"]) for k in rotated.key_ids()]
    assert ("blind-index", "v2", "current") in states
    assert ("blind-index", "v1", "previous") in states
    # A keyring that was already serving takes in the new key when it next looks something up.
    assert serving.blind_indexes(kind="identity", value="zoe|obrien|2009-01-02") == {
        "v2": new,
        "v1": old,
    }
    assert serving.blind_index(kind="identity", value="zoe|obrien|2009-01-02") == new


def test_a_retired_blind_index_version_finds_nothing(
    ring: KeyRing, keystore_path: Path, master_key: bytes
) -> None:
    old = ring.blind_index(kind="local-id", value="school|A-1")
    KeyRing.rotate(keystore_path, master_key=master_key, purpose="blind-index")
    retired = KeyRing.retire(
        keystore_path, master_key=master_key, purpose="blind-index", version="v1"
    )
    indexes = retired.blind_indexes(kind="local-id", value="school|A-1")
    assert list(indexes) == ["v2"] and old not in indexes.values()
    with pytest.raises(KeyStoreError, match="no usable 'blind-index' key of version 'v1'"):
        retired.blind_index(kind="local-id", value="school|A-1", version="v1")
    # The keyring that was serving stops using it too.
    assert list(ring.blind_indexes(kind="local-id", value="school|A-1")) == ["v2"]


def test_an_open_keyring_takes_in_keys_rotated_elsewhere(
    ring: KeyRing, keystore_path: Path, master_key: bytes
) -> None:
    serving = KeyRing.open(keystore_path, master_key=master_key)
    rotated = KeyRing.rotate(keystore_path, master_key=master_key, purpose="data-encryption")
    token = rotated.encrypt(b"new", associated_data=b"ad")
    assert serving.decrypt(token, associated_data=b"ad") == b"new"
    assert serving.data_key_kid == rotated.data_key_kid
    assert serving.token_verifying_jwk("tok-v9-missing") is None


def test_a_wrapped_data_key_opens_only_with_its_associated_data(ring: KeyRing) -> None:
    key = ring.new_data_key()
    wrapped = ring.wrap_data_key(key, associated_data=b"subject_key/1")
    opened = ring.unwrap_data_key(wrapped, associated_data=b"subject_key/1")
    token = key.encrypt(b"value", associated_data=b"t/r/c")
    assert opened.decrypt(token, associated_data=b"t/r/c") == b"value"
    with pytest.raises(DecryptionError, match="authentication failed"):
        ring.unwrap_data_key(wrapped, associated_data=b"subject_key/2")
    with pytest.raises(DecryptionError, match="authentication failed"):
        ring.new_data_key().decrypt(token, associated_data=b"t/r/c")
    assert "secret" in repr(key)


def test_data_key_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="data key must be 32 bytes"):
        DataKey(b"short")
    key = DataKey(bytes(32))
    with pytest.raises(ValueError, match="nonce must be 12 bytes"):
        key.encrypt(b"x", associated_data=b"", nonce=b"1")
    with pytest.raises(DecryptionError, match="expected prefix"):
        key.decrypt("v1.kid.payload", associated_data=b"")
    with pytest.raises(DecryptionError, match="not unpadded base64url"):
        key.decrypt("sk1.***", associated_data=b"")
    with pytest.raises(DecryptionError, match="shorter than nonce and tag"):
        key.decrypt("sk1.AAAA", associated_data=b"")


def test_refresh_rereads_only_a_changed_keystore(
    ring: KeyRing, keystore_path: Path, master_key: bytes
) -> None:
    serving = KeyRing.open(keystore_path, master_key=master_key)
    assert serving.refresh() is True  # First look: nothing was recorded about the file yet.
    # Unchanged file: no re-read, however often asked (tokens naming unknown kids are cheap).
    assert [serving.refresh() for _ in range(3)] == [False, False, False]
    assert serving.token_verifying_jwk("tok-v9-missing") is None
    rotated = KeyRing.rotate(keystore_path, master_key=master_key, purpose="token-signing")
    # The signing path notices the rotation by itself and signs with the new key.
    assert serving.token_signing_private_pem() == rotated.token_signing_private_pem()
    assert serving.token_signing_kid == rotated.token_signing_kid
    assert serving.refresh() is False
    assert serving.refresh(force=True) is True


def test_the_signing_key_and_its_id_come_from_the_same_key_across_a_rotation(
    ring: KeyRing, keystore_path: Path, master_key: bytes
) -> None:
    serving = KeyRing.open(keystore_path, master_key=master_key)
    old_kid, old_pem = serving.token_signing_key()
    rotated = KeyRing.rotate(keystore_path, master_key=master_key, purpose="token-signing")

    kid, pem = serving.token_signing_key()

    assert (kid, pem) == (rotated.token_signing_kid, rotated.token_signing_private_pem())
    assert (kid, pem) != (old_kid, old_pem)
    # The pair signs a token that the published key under that very kid verifies.
    token = jwt.encode({"sub": "x"}, pem.decode(), algorithm="ES256", headers={"kid": kid})
    [published] = [k for k in serving.token_signing_public_jwks() if k["kid"] == kid]
    assert jwt.decode(token, published, algorithms=["ES256"]) == {"sub": "x"}
