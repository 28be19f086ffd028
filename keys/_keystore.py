"""The keystore file: a list of keys as JSON, sealed under the master key with AES-256-GCM.

On disk (format version 1)::

    {"format": "hub-keystore", "version": 1, "nonce": <b64>, "ciphertext": <b64>}

and the ciphertext opens, with associated data b"hub-keystore/v1", to::

    {"keys": [{"purpose": "...", "kid": "...", "version": "v1", "created_at": "...Z",
               "algorithm": "...", "secret": <b64>, "retired_at": "...Z" (only once retired)},
              ...]}

Each purpose may hold several keys; the first one listed for a purpose that is not retired is
the one that writes, and every other key not retired reads. Rotation and new purposes only add
entries, and retirement only stamps one: a keystore written before a purpose existed is still
read, and `KeyRing.open_or_create` adds the missing key.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NewType

from keys._b64 import b64_decode, b64_encode
from keys._files import exclusive_lock, replace_private_file, write_new_private_file
from keys.errors import DecryptionError, KeyStoreError, MasterKeyError
from keys.hazmat.primitives import (
    AES_256_KEY_SIZE,
    GCM_NONCE_SIZE,
    GCM_TAG_SIZE,
    aes_gcm_decrypt,
    aes_gcm_encrypt,
    random_bytes,
)

KeyId = NewType("KeyId", str)

FORMAT_NAME = "hub-keystore"
FORMAT_VERSION = 1
# Binding the format name and version into the tag stops a sealed body being replayed
# under a different envelope version.
ASSOCIATED_DATA = f"{FORMAT_NAME}/v{FORMAT_VERSION}".encode("ascii")

PSEUDONYM_ROOT = "pseudonym-root"
BLIND_INDEX = "blind-index"
DATA_ENCRYPTION = "data-encryption"
TOKEN_SIGNING = "token-signing"  # noqa: S105 -- a purpose name, not a password
CHECKPOINT_SIGNING = "checkpoint-signing"
BUNDLE_SIGNING = "bundle-signing"
# Every keystore must hold these; older keystores may lack the later purposes below.
REQUIRED_PURPOSES = (PSEUDONYM_ROOT, BLIND_INDEX, DATA_ENCRYPTION, TOKEN_SIGNING)
# What a new keystore gets, and what `open_or_create` adds to an older one.
GENERATED_PURPOSES = (*REQUIRED_PURPOSES, CHECKPOINT_SIGNING, BUNDLE_SIGNING)

_KEY_FIELDS = ("purpose", "kid", "version", "created_at", "algorithm", "secret")
# Refuse absurd files before parsing them; a real keystore is a few kilobytes.
_MAX_FILE_SIZE = 1 << 20


@dataclass(frozen=True)
class StoredKey:
    purpose: str
    kid: KeyId
    version: str
    created_at: str
    algorithm: str
    secret: bytes = field(repr=False)
    # When the key stopped being used at all (RFC 3339 UTC); None while it writes or reads.
    retired_at: str | None = None


def rfc3339_utc(now: datetime) -> str:
    """Format an aware datetime as RFC 3339 UTC with a "Z" suffix.

    Raises ValueError if `now` is naive.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def validate_master_key(master_key: bytes) -> None:
    """Raises MasterKeyError unless `master_key` is 32 bytes."""
    if len(master_key) != AES_256_KEY_SIZE:
        raise MasterKeyError(f"master key must be {AES_256_KEY_SIZE} bytes, got {len(master_key)}")


def _sealed_file(keys: Sequence[StoredKey], *, master_key: bytes) -> bytes:
    validate_master_key(master_key)
    body = json.dumps({"keys": [_key_to_json(key) for key in keys]}).encode("utf-8")
    nonce = random_bytes(GCM_NONCE_SIZE)
    sealed = aes_gcm_encrypt(
        master_key, nonce=nonce, plaintext=body, associated_data=ASSOCIATED_DATA
    )
    envelope = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "nonce": b64_encode(nonce),
        "ciphertext": b64_encode(sealed),
    }
    return (json.dumps(envelope, indent=2) + "\n").encode("utf-8")


def write_keystore(path: Path, keys: Sequence[StoredKey], *, master_key: bytes) -> None:
    """Seal `keys` and write them to a new file at `path` (mode 0o600).

    Raises FileExistsError if `path` exists, KeyStoreError on any other write failure.
    """
    data = _sealed_file(keys, master_key=master_key)
    try:
        write_new_private_file(path, data)
    except FileExistsError:
        raise
    except OSError as exc:
        raise KeyStoreError(
            f"cannot write keystore {path}: {exc.strerror or type(exc).__name__}"
        ) from exc


def update_keystore(
    path: Path, *, master_key: bytes, change: Callable[[list[StoredKey]], list[StoredKey] | None]
) -> list[StoredKey]:
    """Replace the stored keys by `change(current keys)`, unless it returns None.

    The read, the change and the atomic replacement happen under an exclusive lock on the file,
    so two processes changing the keystore at once never lose each other's keys. Returns the
    keys now stored. Raises MasterKeyError and KeyStoreError as `read_keystore` does, and
    KeyStoreError if the file cannot be replaced.
    """
    try:
        with exclusive_lock(path):
            keys = read_keystore(path, master_key=master_key)
            changed = change(keys)
            if changed is None:
                return keys
            replace_private_file(path, _sealed_file(changed, master_key=master_key))
            return changed
    except FileNotFoundError:
        raise KeyStoreError(f"no keystore at {path}; create one first") from None
    except OSError as exc:
        raise KeyStoreError(
            f"cannot update keystore {path}: {exc.strerror or type(exc).__name__}"
        ) from exc


def add_missing_keys(
    path: Path, *, master_key: bytes, generate: Callable[[str], StoredKey]
) -> list[StoredKey]:
    """Add a key, made by `generate(purpose)`, for each generated purpose the keystore lacks.

    Done under the file lock (`update_keystore`), so two processes opening an old keystore at
    once add one key, not two that overwrite each other. Returns the keys now stored. Raises
    as `update_keystore` does.
    """

    def change(keys: list[StoredKey]) -> list[StoredKey] | None:
        present = {key.purpose for key in keys}
        missing = [p for p in GENERATED_PURPOSES if p not in present]
        return [*keys, *(generate(purpose) for purpose in missing)] if missing else None

    return update_keystore(path, master_key=master_key, change=change)


def rotate_key(
    path: Path, *, master_key: bytes, purpose: str, generate: Callable[[list[StoredKey]], StoredKey]
) -> list[StoredKey]:
    """Put a new key, made by `generate(current keys)`, first among the keys of `purpose`.

    Every older key is kept (it still reads and verifies); only the writer changes. Done under
    the file lock (`update_keystore`). Returns the keys now stored. Raises as
    `update_keystore` does.
    """

    def change(keys: list[StoredKey]) -> list[StoredKey]:
        new = generate(keys)
        first = next((i for i, key in enumerate(keys) if key.purpose == purpose), len(keys))
        return [*keys[:first], new, *keys[first:]]

    return update_keystore(path, master_key=master_key, change=change)


def read_keystore(path: Path, *, master_key: bytes) -> list[StoredKey]:
    """Read, authenticate and parse the keystore at `path`.

    Raises MasterKeyError if `master_key` is not 32 bytes or does not open the keystore,
    KeyStoreError if the file is missing, unreadable, corrupt or of an unknown version.
    """
    validate_master_key(master_key)
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_FILE_SIZE + 1)
    except FileNotFoundError:
        raise KeyStoreError(f"no keystore at {path}; create one first") from None
    except OSError as exc:
        raise KeyStoreError(
            f"cannot read keystore {path}: {exc.strerror or type(exc).__name__}"
        ) from exc
    if len(raw) > _MAX_FILE_SIZE:
        raise KeyStoreError(f"keystore {path} is corrupt: larger than {_MAX_FILE_SIZE} bytes")
    nonce, sealed = _parse_envelope(path, raw)
    try:
        body = aes_gcm_decrypt(
            master_key, nonce=nonce, ciphertext=sealed, associated_data=ASSOCIATED_DATA
        )
    except DecryptionError:
        # GCM cannot tell a wrong key from an altered file; the wrong key is by far the
        # likelier cause, so name it first.
        raise MasterKeyError(
            f"master key does not open keystore {path} (wrong master key, or the file was altered)"
        ) from None
    return _parse_body(path, body)


def _corrupt(path: Path, reason: str) -> KeyStoreError:
    return KeyStoreError(f"keystore {path} is corrupt: {reason}")


def _parse_envelope(path: Path, raw: bytes) -> tuple[bytes, bytes]:
    try:
        envelope = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _corrupt(path, "not JSON") from None
    if not isinstance(envelope, dict):
        raise _corrupt(path, "top level is not an object")
    if envelope.get("format") != FORMAT_NAME:
        raise _corrupt(path, f"format is not {FORMAT_NAME!r}")
    version = envelope.get("version")
    if type(version) is not int:
        raise _corrupt(path, "version is not an integer")
    if version != FORMAT_VERSION:
        raise KeyStoreError(
            f"keystore {path} has format version {version}; this build reads version "
            f"{FORMAT_VERSION}"
        )
    nonce = _b64_field(path, envelope, "nonce", where="")
    sealed = _b64_field(path, envelope, "ciphertext", where="")
    if len(nonce) != GCM_NONCE_SIZE:
        raise _corrupt(path, f"nonce must be {GCM_NONCE_SIZE} bytes, got {len(nonce)}")
    if len(sealed) < GCM_TAG_SIZE:
        raise _corrupt(path, "ciphertext is shorter than its tag")
    return nonce, sealed


def _b64_field(path: Path, obj: dict[str, Any], name: str, *, where: str) -> bytes:
    value = obj.get(name)
    if not isinstance(value, str):
        raise _corrupt(path, f"{where}{name} is missing or not a string")
    try:
        return b64_decode(value)
    except ValueError:
        raise _corrupt(path, f"{where}{name} is not base64") from None


def _parse_body(path: Path, body: bytes) -> list[StoredKey]:
    # The body authenticated under the master key, so a failure here means a bug in the
    # writer rather than tampering; the message still names the field.
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _corrupt(path, "sealed body is not JSON") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise _corrupt(path, "sealed body has no key list")
    keys: list[StoredKey] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise _corrupt(path, f"key {index} is not an object")
        for name in _KEY_FIELDS:
            if not isinstance(entry.get(name), str):
                raise _corrupt(path, f"key {index} field {name!r} is missing or not a string")
        secret = _b64_field(path, entry, "secret", where=f"key {index} field ")
        retired_at = entry.get("retired_at")
        if retired_at is not None and not isinstance(retired_at, str):
            raise _corrupt(path, f"key {index} field 'retired_at' is not a string")
        keys.append(
            StoredKey(
                purpose=entry["purpose"],
                kid=KeyId(entry["kid"]),
                version=entry["version"],
                created_at=entry["created_at"],
                algorithm=entry["algorithm"],
                secret=secret,
                retired_at=retired_at,
            )
        )
    kids = [key.kid for key in keys]
    if len(set(kids)) != len(kids):
        raise _corrupt(path, "duplicate key id")
    # A purpose whose every key is retired has nothing to write with.
    present = {key.purpose for key in keys if key.retired_at is None}
    for purpose in REQUIRED_PURPOSES:
        if purpose not in present:
            raise _corrupt(path, f"no {purpose!r} key")
    return keys


def _key_to_json(key: StoredKey) -> dict[str, str]:
    entry = {
        "purpose": key.purpose,
        "kid": key.kid,
        "version": key.version,
        "created_at": key.created_at,
        "algorithm": key.algorithm,
        "secret": b64_encode(key.secret),
    }
    # Written only once set, so a keystore never retired reads the same in older builds.
    if key.retired_at is not None:
        entry["retired_at"] = key.retired_at
    return entry
