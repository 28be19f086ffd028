"""Key retirement: every key carries created and retired dates; a retired key is used for
nothing, and the current key of a purpose cannot be retired."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from keys import DecryptionError, KeyRing

from .conftest import unseal

LATER = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def _rotate(path: Path, master_key: bytes, purpose: str) -> KeyRing:
    return KeyRing.rotate(path, master_key=master_key, purpose=purpose)


def _entry(ring: KeyRing, purpose: str, version: str) -> dict[str, str | None]:
    (entry,) = [k for k in ring.key_ids() if k["purpose"] == purpose and k["version"] == version]
    return entry


def test_the_current_key_cannot_be_retired(
    ring: KeyRing, keystore_path: Path, master_key: bytes
) -> None:
    before = keystore_path.read_bytes()
    for purpose in ("token-signing", "blind-index", "pseudonym-root", "bundle-signing"):
        with pytest.raises(ValueError, match="is the current key; rotate first"):
            KeyRing.retire(keystore_path, master_key=master_key, purpose=purpose, version="v1")
    with pytest.raises(ValueError, match="no 'token-signing' key of version 'v7'"):
        KeyRing.retire(keystore_path, master_key=master_key, purpose="token-signing", version="v7")
    assert keystore_path.read_bytes() == before


def test_a_retired_signing_key_leaves_the_jwks_and_verifies_nothing(
    ring: KeyRing, keystore_path: Path, master_key: bytes
) -> None:
    old_kid = ring.token_signing_kid
    rotated = _rotate(keystore_path, master_key, "token-signing")
    assert [k["kid"] for k in rotated.token_signing_public_jwks()] == [
        rotated.token_signing_kid,
        old_kid,
    ]
    retired = KeyRing.retire(
        keystore_path, master_key=master_key, purpose="token-signing", version="v1", now=LATER
    )
    assert [k["kid"] for k in retired.token_signing_public_jwks()] == [rotated.token_signing_kid]
    assert retired.token_verifying_jwk(old_kid) is None
    entry = _entry(retired, "token-signing", "v1")
    assert (entry["state"], entry["retired_at"]) == ("retired", "2030-01-02T03:04:05Z")
    assert _entry(retired, "token-signing", "v2")["state"] == "current"
    # The retirement is stored: a fresh open, and a keyring that was already serving, see it.
    assert KeyRing.open(keystore_path, master_key=master_key).token_verifying_jwk(old_kid) is None
    assert [k["kid"] for k in ring.token_signing_public_jwks()] == [rotated.token_signing_kid]
    stored = [k for k in unseal(keystore_path, master_key)["keys"] if k["kid"] == old_kid]
    assert stored[0]["retired_at"] == "2030-01-02T03:04:05Z"
    with pytest.raises(ValueError, match="already retired"):
        KeyRing.retire(keystore_path, master_key=master_key, purpose="token-signing", version="v1")


def test_a_retired_pseudonym_version_no_longer_resolves(
    ring: KeyRing, keystore_path: Path, master_key: bytes
) -> None:
    old = ring.pseudonym(domain="agency:a", value="subject-1")
    rotated = _rotate(keystore_path, master_key, "pseudonym-root")
    assert rotated.pseudonyms(domain="agency:a", value="subject-1")["v1"] == old
    retired = KeyRing.retire(
        keystore_path, master_key=master_key, purpose="pseudonym-root", version="v1"
    )
    forms = retired.pseudonyms(domain="agency:a", value="subject-1")
    assert list(forms) == ["v2"]
    assert old not in forms.values()


def test_a_retired_data_key_opens_nothing(
    ring: KeyRing, keystore_path: Path, master_key: bytes
) -> None:
    token = ring.encrypt(b"secret", associated_data=b"ad")
    _rotate(keystore_path, master_key, "data-encryption")
    retired = KeyRing.retire(
        keystore_path, master_key=master_key, purpose="data-encryption", version="v1"
    )
    with pytest.raises(DecryptionError, match="unknown key id"):
        retired.decrypt(token, associated_data=b"ad")


def test_bundle_signing_key_is_versioned_rotatable_and_retirable(
    ring: KeyRing, keystore_path: Path, master_key: bytes
) -> None:
    assert ring.has_bundle_signing_key
    assert ring.bundle_signing_kid.startswith("bdl-v1-")
    first_pem = ring.bundle_verifying_keys()[0][1]
    assert first_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert b"PRIVATE" in ring.bundle_signing_private_pem()
    rotated = _rotate(keystore_path, master_key, "bundle-signing")
    assert rotated.bundle_signing_kid.startswith("bdl-v2-")
    assert [kid for kid, _ in rotated.bundle_verifying_keys()] == [
        rotated.bundle_signing_kid,
        ring.bundle_signing_kid,
    ]
    retired = KeyRing.retire(
        keystore_path, master_key=master_key, purpose="bundle-signing", version="v1"
    )
    assert [kid for kid, _ in retired.bundle_verifying_keys()] == [rotated.bundle_signing_kid]
