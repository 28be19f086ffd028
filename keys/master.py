"""Loading the master key that encrypts the keystore.

Where the master key comes from is a `MasterKeyBackend`. The local ones are implemented here:

- `EnvMasterKey`: HUB_MASTER_KEY, base64 of 32 bytes;
- `PassphraseMasterKey`: HUB_MASTER_PASSPHRASE, stretched with scrypt (N=2**15, r=8, p=1)
  and a random 16-byte salt kept in a file beside the keystore (`master.salt`, mode 0o600);
- `KeyFileMasterKey`: a generated key file readable only by its owner.

A KMS or HSM backend implements the same one-method interface: it keeps a data key wrapped by
a key that never leaves the KMS/HSM (stored, say, as `master.key.wrapped`) and, in `load`,
asks the KMS to unwrap it (AWS KMS Decrypt, GCP KMS decrypt, Vault transit/decrypt, PKCS#11
C_UnwrapKey), returning the 32 bytes. See docs/keys.md.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Protocol

from keys._b64 import b64_decode_lenient, b64_encode
from keys._files import write_new_private_file
from keys.errors import MasterKeyError
from keys.hazmat.primitives import AES_256_KEY_SIZE, random_bytes, scrypt_derive

MASTER_KEY_SIZE = AES_256_KEY_SIZE
# Read at most this much from a key file, so a wrong path cannot make us slurp a huge file.
_MAX_KEY_FILE_SIZE = 4096
_SALT_SIZE = 16
# Shortest passphrase accepted: scrypt slows guessing but cannot save a short passphrase.
MIN_PASSPHRASE_LENGTH = 12


class MasterKeyBackend(Protocol):
    """Where the master key comes from (see the module docstring for KMS and HSM)."""

    def load(self, *, create: bool) -> bytes:
        """Return the 32-byte master key, making one first if `create` and the backend can.

        Raises MasterKeyError if the key is missing, malformed or cannot be obtained.
        """
        ...


class EnvMasterKey:
    """The master key given directly (HUB_MASTER_KEY), base64 of 32 bytes."""

    def __init__(self, value: str) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "EnvMasterKey(<secret>)"

    def load(self, *, create: bool) -> bytes:
        """Raises MasterKeyError unless the value is base64 of 32 bytes."""
        del create
        return _decode_master_key(self._value, error="HUB_MASTER_KEY must be base64 of 32 bytes")


class KeyFileMasterKey:
    """A key file readable only by its owner, generated on first use if `create`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, *, create: bool) -> bytes:
        """Raises MasterKeyError as `load_master_key` does for a key file."""
        return load_master_key(env_value=None, key_file=self.path, create=create)


class PassphraseMasterKey:
    """A passphrase (HUB_MASTER_PASSPHRASE) stretched with scrypt and a stored random salt."""

    def __init__(self, passphrase: str, *, salt_file: Path) -> None:
        self._passphrase = passphrase
        self.salt_file = salt_file

    def __repr__(self) -> str:
        return f"PassphraseMasterKey(<secret>, salt_file={self.salt_file!r})"

    def load(self, *, create: bool) -> bytes:
        """Raises MasterKeyError if the passphrase is shorter than 12 characters, or the salt
        file is missing (and not `create`), too exposed or malformed."""
        if len(self._passphrase) < MIN_PASSPHRASE_LENGTH:
            raise MasterKeyError(
                f"HUB_MASTER_PASSPHRASE must be at least {MIN_PASSPHRASE_LENGTH} characters"
            )
        salt = self._salt(create=create)
        return scrypt_derive(self._passphrase.encode("utf-8"), salt=salt, length=MASTER_KEY_SIZE)

    def _salt(self, *, create: bool) -> bytes:
        error = f"salt file {self.salt_file} must contain base64 of {_SALT_SIZE} bytes"
        try:
            return _read_salt(self.salt_file, error=error)
        except FileNotFoundError:
            if not create:
                raise MasterKeyError(
                    f"no salt file {self.salt_file}: the passphrase cannot be stretched without it"
                ) from None
        salt = random_bytes(_SALT_SIZE)
        try:
            write_new_private_file(self.salt_file, (b64_encode(salt) + "\n").encode("ascii"))
        except FileExistsError:
            return _read_salt(self.salt_file, error=error)
        except OSError as exc:
            raise MasterKeyError(
                f"cannot write salt file {self.salt_file}: {exc.strerror or type(exc).__name__}"
            ) from exc
        return salt


def _read_salt(path: Path, *, error: str) -> bytes:
    # Raises FileNotFoundError (for the caller to decide) or MasterKeyError.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise MasterKeyError(
            f"cannot open salt file {path}: {exc.strerror or type(exc).__name__}"
        ) from exc
    try:
        content = _read_checked(path, fd)
    finally:
        os.close(fd)
    try:
        salt = b64_decode_lenient(content.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise MasterKeyError(error) from None
    if len(salt) != _SALT_SIZE:
        raise MasterKeyError(error)
    return salt


def master_key_backend(
    *, env_value: str | None, passphrase: str | None, key_file: Path, salt_file: Path
) -> MasterKeyBackend:
    """The local backend the settings name: HUB_MASTER_KEY, else HUB_MASTER_PASSPHRASE, else
    the key file. Raises MasterKeyError if both a key and a passphrase are given."""
    if env_value is not None and passphrase is not None:
        raise MasterKeyError("set HUB_MASTER_KEY or HUB_MASTER_PASSPHRASE, not both")
    if env_value is not None:
        return EnvMasterKey(env_value)
    if passphrase is not None:
        return PassphraseMasterKey(passphrase, salt_file=salt_file)
    return KeyFileMasterKey(key_file)


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
