from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from keys import KeyRing
from keys._b64 import b64_decode
from keys.hazmat import aes_gcm_decrypt


@pytest.fixture
def master_key() -> bytes:
    return bytes(range(32))


@pytest.fixture
def keystore_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "keystore.json"


@pytest.fixture
def ring(keystore_path: Path, master_key: bytes) -> KeyRing:
    return KeyRing.create(keystore_path, master_key=master_key)


def unseal(path: Path, master_key: bytes) -> dict[str, Any]:
    """Open a keystore by hand, independently of KeyRing, to inspect what it holds."""
    envelope = json.loads(path.read_bytes())
    body = aes_gcm_decrypt(
        master_key,
        nonce=b64_decode(envelope["nonce"]),
        ciphertext=b64_decode(envelope["ciphertext"]),
        associated_data=b"hub-keystore/v1",
    )
    document: dict[str, Any] = json.loads(body)
    return document
