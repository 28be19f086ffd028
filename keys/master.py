"""Loading the master key that encrypts the keystore."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from keys._b64 import b64_decode_lenient, b64_encode
from keys._files import write_new_private_file
from keys.errors import MasterKeyError
from keys.hazmat.primitives import AES_256_KEY_SIZE, random_bytes

MASTER_KEY_SIZE = AES_256_KEY_SIZE
# Read at most this much from a key file, so a wrong path cannot make us slurp a huge file.
_MAX_KEY_FILE_SIZE = 4096


def load_master_key(*, env_value: str | None, key_file: Path, create: bool = False) -> bytes:
    """Return the 32-byte master key.

    Sources, in order: `env_value` (the value of HUB_MASTER_KEY, base64 in either alphabet,
    padding optional); else `key_file` if it exists; else, if `create` is true, a fresh random
    key written to `key_file` with mode 0o600 (its directory created with mode 0o700).

    Raises MasterKeyError if `env_value` is given but is not base64 of 32 bytes, if `key_file`
    is readable by group or others, unreadable or malformed, if it is missing and `create` is
    false, or if a new key file cannot be written.
    """
    if env_value is not None:
        return _decode_master_key(env_value, error="HUB_MASTER_KEY must be base64 of 32 bytes")
    try:
        return _read_key_file(key_file)
    except FileNotFoundError:
        if not create:
            raise MasterKeyError(
                f"no master key: set HUB_MASTER_KEY or create the key file {key_file}"
            ) from None
    key = random_bytes(MASTER_KEY_SIZE)
    try:
        write_new_private_file(key_file, (b64_encode(key) + "\n").encode("ascii"))
    except FileExistsError:
        # Another process created the file first; use its key so both agree.
        return _read_key_file(key_file)
    except OSError as exc:
        raise MasterKeyError(
            f"cannot write master key file {key_file}: {exc.strerror or type(exc).__name__}"
        ) from exc
    return key


def _read_key_file(key_file: Path) -> bytes:
    # Raises FileNotFoundError (for the caller to decide) or MasterKeyError.
    try:
        # O_NONBLOCK so that a FIFO at the path fails the regular-file check instead of hanging.
        fd = os.open(key_file, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise MasterKeyError(
            f"cannot open master key file {key_file}: {exc.strerror or type(exc).__name__}"
        ) from exc
    try:
        content = _read_checked(key_file, fd)
    finally:
        os.close(fd)
    error = f"master key file {key_file} must contain base64 of 32 bytes"
    if len(content) > _MAX_KEY_FILE_SIZE:
        raise MasterKeyError(error)
    try:
        text = content.decode("ascii")
    except UnicodeDecodeError:
        raise MasterKeyError(error) from None
    return _decode_master_key(text, error=error)


def _read_checked(key_file: Path, fd: int) -> bytes:
    # Check the opened file itself, not the path, so it cannot be swapped after the check.
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise MasterKeyError(f"master key file {key_file} is not a regular file")
    if info.st_mode & 0o077:
        raise MasterKeyError(
            f"master key file {key_file} has mode {stat.S_IMODE(info.st_mode):04o}; "
            "it must be readable only by its owner (chmod 600)"
        )
    content = b""
    while len(content) <= _MAX_KEY_FILE_SIZE:
        chunk = os.read(fd, _MAX_KEY_FILE_SIZE + 1 - len(content))
        if not chunk:
            break
        content += chunk
    return content


def _decode_master_key(text: str, *, error: str) -> bytes:
    try:
        key = b64_decode_lenient(text)
    except ValueError:
        # "from None": the decoder's message could quote part of the secret.
        raise MasterKeyError(error) from None
    if len(key) != MASTER_KEY_SIZE:
        raise MasterKeyError(error)
    return key
