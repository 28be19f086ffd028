"""Errors raised by the keyring.

    KeysError
    ├── MasterKeyError   master key missing, malformed, too exposed, or not opening the keystore
    ├── KeyStoreError    keystore missing, corrupt, of an unknown version, or already there
    └── DecryptionError  ciphertext token malformed, of an unknown key, or failing authentication

Messages name the failed check and never contain key material or plaintext.
"""

from __future__ import annotations


class KeysError(Exception):
    """Base class of every error raised by `keys`."""


class MasterKeyError(KeysError):
    """The master key cannot be loaded or does not open the keystore."""


class KeyStoreError(KeysError):
    """The keystore file cannot be read, parsed or written."""


class DecryptionError(KeysError):
    """A ciphertext could not be decrypted and authenticated."""
