"""The hub's keyring: versioned keys, pseudonyms, blind indexes, envelope encryption, signing.

Use `load_master_key` to obtain the master key and `KeyRing` for everything else. Raw
primitives live behind the fence in `keys.hazmat` and are not for use outside `keys/`.
This package never imports `hub`.
"""

from __future__ import annotations

from keys.errors import DecryptionError, KeysError, KeyStoreError, MasterKeyError
from keys.keyring import DataKey, KeyRing
from keys.master import (
    EnvMasterKey,
    KeyFileMasterKey,
    MasterKeyBackend,
    PassphraseMasterKey,
    load_master_key,
    master_key_backend,
)

__all__ = [
    "DataKey",
    "DecryptionError",
    "EnvMasterKey",
    "KeyFileMasterKey",
    "KeyRing",
    "KeyStoreError",
    "KeysError",
    "MasterKeyBackend",
    "MasterKeyError",
    "PassphraseMasterKey",
    "load_master_key",
    "master_key_backend",
]
