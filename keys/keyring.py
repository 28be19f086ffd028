"""KeyRing: the safe recipes built on the keystore and the hazmat primitives."""

from __future__ import annotations

import base64
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from keys._b64 import b64url_decode_nopad, b64url_encode_nopad
from keys._keystore import (
    BLIND_INDEX,
    BUNDLE_SIGNING,
    CHECKPOINT_SIGNING,
    DATA_ENCRYPTION,
    GENERATED_PURPOSES,
    PSEUDONYM_ROOT,
    TOKEN_SIGNING,
    KeyId,
    StoredKey,
    add_missing_keys,
    read_keystore,
    rfc3339_utc,
    rotate_key,
    update_keystore,
    validate_master_key,
    write_keystore,
)
from keys.errors import DecryptionError, KeyStoreError
from keys.hazmat.primitives import (
    AES_256_KEY_SIZE,
    ED25519_SEED_SIZE,
    GCM_NONCE_SIZE,
    GCM_TAG_SIZE,
    aes_gcm_decrypt,
    aes_gcm_encrypt,
    ed25519_private_key_from_seed,
    ed25519_public_key_raw,
    generate_p256_private_key,
    hkdf_sha256,
    hmac_sha256,
    p256_private_key_from_scalar,
    p256_private_key_to_pkcs8_pem,
    p256_private_key_to_scalar,
    p256_public_key_to_der,
    p256_public_key_to_pem,
    p256_public_point,
    random_bytes,
    sha256,
)

KEY_VERSION = "v1"
PSEUDONYM_PREFIX = "v1."
CIPHERTEXT_VERSION = "v1"
# Values sealed under a per-subject data key: "sk1.<base64url(nonce || ciphertext)>". The key
# is the subject's own, so the token names no key id; the hub finds the key by the row.
SUBJECT_CIPHERTEXT_PREFIX = "sk1."
# Purposes that `rotate` accepts: all but none. A blind-index rotation only adds the key; the
# hub then recomputes every stored index under it (`hub keys rotate blind-index`).
ROTATABLE_PURPOSES = (
    PSEUDONYM_ROOT,
    BLIND_INDEX,
    DATA_ENCRYPTION,
    TOKEN_SIGNING,
    CHECKPOINT_SIGNING,
    BUNDLE_SIGNING,
)
# Key states as `key_ids` reports them.
CURRENT, PREVIOUS, RETIRED = "current", "previous", "retired"

_PSEUDONYM_INFO = b"hub/pseudonym/v1/"
_BLIND_INDEX_INFO = b"hub/blind-index/v1/"
_PSEUDONYM_BYTES = 20  # 160 bits: 32 base32 characters with no padding.
_ROOT_SECRET_SIZE = 32

# The kid prefix of each purpose, and the algorithm label stored with its keys.
_KID_PREFIX = {
    PSEUDONYM_ROOT: "psn",
    BLIND_INDEX: "bix",
    DATA_ENCRYPTION: "dek",
    TOKEN_SIGNING: "tok",
    CHECKPOINT_SIGNING: "ckp",
    BUNDLE_SIGNING: "bdl",
}
_ALGORITHM = {
    PSEUDONYM_ROOT: "hkdf-hmac-sha256",
    BLIND_INDEX: "hkdf-hmac-sha256",
    DATA_ENCRYPTION: "aes-256-gcm",
    TOKEN_SIGNING: "es256",
    CHECKPOINT_SIGNING: "ed25519",
    BUNDLE_SIGNING: "es256",
}


# What `refresh` replaces: every attribute the constructor derives from the keys.
_STATE_ATTRIBUTES = (
    "_keys",
    "_pseudonym_roots",
    "_blind_index_roots",
    "_data_key",
    "_data_keys",
    "_signing_keys",
    "_signing_kid",
    "_signing_key",
    "_checkpoint_keys",
    "_bundle_keys",
    "_pseudonym_keys",
    "_blind_index_keys",
)


class DataKey:
    """One subject's own AES-256-GCM data key (a DEK of envelope encryption).

    Made by `KeyRing.new_data_key` and kept only wrapped (`KeyRing.wrap_data_key`); destroying
    the wrapped copy makes everything sealed under it unreadable (crypto-shredding).
    """

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        """Raises ValueError unless `secret` is 32 bytes."""
        if len(secret) != AES_256_KEY_SIZE:
            raise ValueError(f"data key must be {AES_256_KEY_SIZE} bytes, got {len(secret)}")
        self._secret = secret

    def __repr__(self) -> str:
        return "DataKey(<secret>)"

    def encrypt(
        self, plaintext: bytes, *, associated_data: bytes, nonce: bytes | None = None
    ) -> str:
        """Seal `plaintext`; returns "sk1.<base64url(nonce || ciphertext)>".

        `associated_data` should name the table, row and column the value is stored in, so a
        value moved elsewhere fails to decrypt. Raises ValueError for a `nonce` not 12 bytes.
        """
        if nonce is None:
            nonce = random_bytes(GCM_NONCE_SIZE)
        elif len(nonce) != GCM_NONCE_SIZE:
            raise ValueError(f"nonce must be {GCM_NONCE_SIZE} bytes, got {len(nonce)}")
        sealed = aes_gcm_encrypt(
            self._secret, nonce=nonce, plaintext=plaintext, associated_data=associated_data
        )
        return SUBJECT_CIPHERTEXT_PREFIX + b64url_encode_nopad(nonce + sealed)

    def decrypt(self, token: str, *, associated_data: bytes) -> bytes:
        """Open a token made by `encrypt`.

        Raises DecryptionError if the token is malformed or fails authentication (wrong key,
        wrong associated data, or altered).
        """
        if not token.startswith(SUBJECT_CIPHERTEXT_PREFIX):
            raise DecryptionError(f"malformed token: expected prefix {SUBJECT_CIPHERTEXT_PREFIX!r}")
        try:
            raw = b64url_decode_nopad(token[len(SUBJECT_CIPHERTEXT_PREFIX) :])
        except ValueError:
            raise DecryptionError("malformed token: payload is not unpadded base64url") from None
        if len(raw) < GCM_NONCE_SIZE + GCM_TAG_SIZE:
            raise DecryptionError("malformed token: payload is shorter than nonce and tag")
        try:
            return aes_gcm_decrypt(
                self._secret,
                nonce=raw[:GCM_NONCE_SIZE],
                ciphertext=raw[GCM_NONCE_SIZE:],
                associated_data=associated_data,
            )
        except DecryptionError:
            raise DecryptionError(
                "authentication failed: wrong key or associated data, or the token was altered"
            ) from None


class _KeyStoreExistsError(KeyStoreError):
    """create() found a keystore already there; open_or_create() opens it instead."""


class KeyRing:
    """The hub's keys and the operations that use them.

    Obtain one with `KeyRing.create`, `KeyRing.open` or `KeyRing.open_or_create`. For each
    purpose the first key in the keystore writes and every key reads, so later rotation only
    has to add keys.
    """

    def __init__(self, keys: Sequence[StoredKey]) -> None:
        """Build a keyring from parsed keystore entries.

        Raises KeyStoreError if a required purpose is missing or a key has an invalid size.
        """
        self._keys = tuple(keys)
        # Retired keys are listed by `key_ids` but used for nothing: they neither write, read,
        # verify nor resolve.
        active = [key for key in self._keys if key.retired_at is None]
        # Every pseudonym-root key, newest (the writer) first: old pseudonyms still resolve.
        self._pseudonym_roots = [
            (key.version, key.secret) for key in active if key.purpose == PSEUDONYM_ROOT
        ]
        if not self._pseudonym_roots:
            raise KeyStoreError(f"keystore has no {PSEUDONYM_ROOT!r} key")
        # Every blind-index key, newest (the writer) first: during a rotation, subjects not yet
        # re-indexed are still found under the older key.
        self._blind_index_roots = [
            (key.version, key.kid, key.secret) for key in active if key.purpose == BLIND_INDEX
        ]
        if not self._blind_index_roots:
            raise KeyStoreError(f"keystore has no {BLIND_INDEX!r} key")
        self._data_key = _first(active, DATA_ENCRYPTION)
        self._data_keys: dict[str, bytes] = {}
        for key in active:
            if key.purpose == DATA_ENCRYPTION:
                if len(key.secret) != AES_256_KEY_SIZE:
                    raise KeyStoreError(f"data-encryption key {key.kid} is not 32 bytes")
                self._data_keys[key.kid] = key.secret
        _first(active, TOKEN_SIGNING)
        # Every token-signing key, the writer first; older ones still verify what they signed.
        self._signing_keys = _p256_keys(active, TOKEN_SIGNING)
        self._signing_kid, self._signing_key = self._signing_keys[0]
        # Keystores written before bundle signing existed have none until `open_or_create`.
        self._bundle_keys = _p256_keys(active, BUNDLE_SIGNING)
        # Keystores written before checkpoint signing existed have no such key; everything
        # else still works, and `open_or_create` adds one.
        self._checkpoint_keys: list[tuple[KeyId, ed25519.Ed25519PrivateKey]] = []
        for key in active:
            if key.purpose == CHECKPOINT_SIGNING:
                try:
                    seed_key = ed25519_private_key_from_seed(key.secret)
                except ValueError:
                    raise KeyStoreError(
                        f"checkpoint-signing key {key.kid} is not a {ED25519_SEED_SIZE}-byte "
                        "Ed25519 seed"
                    ) from None
                self._checkpoint_keys.append((key.kid, seed_key))
        # Derived keys are cached: HKDF is cheap, but pseudonyms are computed in bulk.
        self._pseudonym_keys: dict[tuple[str, str], bytes] = {}
        # Where `refresh` re-reads the keys from; set by the constructors that read a file.
        self._source: tuple[Path, bytes] | None = None
        self._refresh_lock = threading.Lock()
        # (inode, mtime, size) of the keystore file when last read: every change replaces the
        # file, so an unchanged signature means there is nothing new to read.
        self._file_signature: tuple[int, int, int] | None = None
        self._blind_index_keys: dict[tuple[str, str], bytes] = {}

    @classmethod
    def create(cls, path: Path, *, master_key: bytes, now: datetime | None = None) -> KeyRing:
        """Generate a full set of keys and write them, sealed under `master_key`, to `path`.

        The file gets mode 0o600 and is written atomically; `now` (default: current UTC time)
        stamps `created_at`. Raises MasterKeyError if `master_key` is not 32 bytes and
        KeyStoreError if `path` already exists (it is never overwritten) or cannot be written.
        """
        validate_master_key(master_key)
        if path.exists() or path.is_symlink():
            raise _KeyStoreExistsError(f"keystore {path} already exists; refusing to overwrite it")
        created_at = rfc3339_utc(now if now is not None else datetime.now(UTC))
        keys = [_generate(purpose, created_at) for purpose in GENERATED_PURPOSES]
        try:
            write_keystore(path, keys, master_key=master_key)
        except FileExistsError:
            raise _KeyStoreExistsError(
                f"keystore {path} already exists; refusing to overwrite it"
            ) from None
        ring = cls(keys)
        ring._source = (path, master_key)
        return ring

    @classmethod
    def open(cls, path: Path, *, master_key: bytes) -> KeyRing:
        """Open the keystore at `path`.

        Raises MasterKeyError if `master_key` is not 32 bytes or does not open the keystore,
        KeyStoreError if the file is missing, unreadable, corrupt or of an unknown format version.
        """
        ring = cls(read_keystore(path, master_key=master_key))
        ring._source = (path, master_key)
        return ring

    @classmethod
    def open_or_create(
        cls, path: Path, *, master_key: bytes, now: datetime | None = None
    ) -> KeyRing:
        """Open the keystore at `path`, creating it first if there is none.

        An existing keystore is never replaced, even when `master_key` does not open it; if
        it lacks a key of a purpose added since it was written (checkpoint or bundle signing),
        that key is generated and added, atomically and under a file lock, and all other keys
        are kept.
        Raises MasterKeyError and KeyStoreError as `open` and `create` do.
        """
        try:
            return cls.create(path, master_key=master_key, now=now)
        except _KeyStoreExistsError:
            ring = cls.open(path, master_key=master_key)
        if set(GENERATED_PURPOSES) <= {key.purpose for key in ring._keys}:
            return ring
        created_at = rfc3339_utc(now if now is not None else datetime.now(UTC))
        keys = add_missing_keys(
            path, master_key=master_key, generate=lambda purpose: _generate(purpose, created_at)
        )
        ring = cls(keys)
        ring._source = (path, master_key)
        return ring

    def pseudonym(self, *, domain: str, value: str) -> str:
        """Return the stable pseudonym of `value` within `domain`.

        The same domain and value always give the same pseudonym; different domains give
        unrelated ones. Callers normalise `value` (case, whitespace, Unicode form) first.
        The result is the current pseudonym-root version ("v1.", "v2." after one rotation...)
        followed by 32 lowercase base32 characters.
        """
        version, root = self._pseudonym_roots[0]
        return self._pseudonym_with(version, root, domain=domain, value=value)

    @property
    def pseudonym_version(self) -> str:
        """The version prefix (without the dot) of pseudonyms made now, e.g. "v2"."""
        return self._pseudonym_roots[0][0]

    def pseudonyms(self, *, domain: str, value: str) -> dict[str, str]:
        """The pseudonym of `value` in `domain` under every pseudonym-root version held,
        newest first, keyed by version: what resolves an old pseudonym after a rotation."""
        return {
            version: self._pseudonym_with(version, root, domain=domain, value=value)
            for version, root in self._pseudonym_roots
        }

    def _pseudonym_with(self, version: str, root: bytes, *, domain: str, value: str) -> str:
        domain_key = self._pseudonym_keys.get((version, domain))
        if domain_key is None:
            domain_key = hkdf_sha256(root, info=_PSEUDONYM_INFO + domain.encode("utf-8"))
            self._pseudonym_keys[(version, domain)] = domain_key
        digest = hmac_sha256(domain_key, value.encode("utf-8"))[:_PSEUDONYM_BYTES]
        return f"{version}." + base64.b32encode(digest).decode("ascii").lower()

    def blind_index(self, *, kind: str, value: str, version: str | None = None) -> str:
        """Return the hex blind index of `value` for attributes of type `kind`.

        Equal values of the same kind give equal indexes, so encrypted values can be found by
        equality without decrypting them. Different kinds use unrelated keys, and so do
        different blind-index key versions. `version` (default: the current one, which writes)
        names the key; raises KeyStoreError if this keyring holds no such version, or it is
        retired.
        """
        roots = self._blind_index_roots
        if version is None:
            version = roots[0][0]
        root = next((secret for held, _, secret in roots if held == version), None)
        if root is None:
            raise KeyStoreError(f"no usable {BLIND_INDEX!r} key of version {version!r}")
        return self._blind_index_with(version, root, kind=kind, value=value)

    def blind_indexes(self, *, kind: str, value: str) -> dict[str, str]:
        """The blind index of `value` under every blind-index version held and not retired,
        newest first, keyed by version: what finds a subject during a blind-index rotation,
        whether it has been re-indexed under the new key yet or not.

        Re-reads the keystore first if it has changed (a `stat`; see `refresh`), so a serving
        hub learns of a key rotated in by another process before it looks anything up.
        Raises MasterKeyError and KeyStoreError as `refresh` does.
        """
        self.refresh()
        roots = self._blind_index_roots
        return {
            version: self._blind_index_with(version, root, kind=kind, value=value)
            for version, _, root in roots
        }

    @property
    def blind_index_version(self) -> str:
        """The version of the blind-index key that writes now, e.g. "v2"."""
        return self._blind_index_roots[0][0]

    @property
    def blind_index_kid(self) -> str:
        """Key id of the blind-index key that writes now: "bix-v2-" + 8 random hex."""
        return self._blind_index_roots[0][1]

    def _blind_index_with(self, version: str, root: bytes, *, kind: str, value: str) -> str:
        kind_key = self._blind_index_keys.get((version, kind))
        if kind_key is None:
            kind_key = hkdf_sha256(root, info=_BLIND_INDEX_INFO + kind.encode("utf-8"))
            self._blind_index_keys[(version, kind)] = kind_key
        return hmac_sha256(kind_key, value.encode("utf-8")).hex()

    def encrypt(
        self, plaintext: bytes, *, associated_data: bytes, nonce: bytes | None = None
    ) -> str:
        """Encrypt with AES-256-GCM under the current data-encryption key.

        Returns "v1.<key id>.<base64url(nonce || ciphertext), unpadded>". `associated_data` is
        authenticated but not stored; decrypt needs the same bytes. `nonce` defaults to 12
        random bytes and is meant for tests only: reusing one breaks GCM.
        Raises ValueError if `nonce` is given and is not 12 bytes.
        """
        if nonce is None:
            nonce = random_bytes(GCM_NONCE_SIZE)
        elif len(nonce) != GCM_NONCE_SIZE:
            raise ValueError(f"nonce must be {GCM_NONCE_SIZE} bytes, got {len(nonce)}")
        sealed = aes_gcm_encrypt(
            self._data_key.secret,
            nonce=nonce,
            plaintext=plaintext,
            associated_data=associated_data,
        )
        payload = b64url_encode_nopad(nonce + sealed)
        return f"{CIPHERTEXT_VERSION}.{self._data_key.kid}.{payload}"

    def decrypt(self, token: str, *, associated_data: bytes) -> bytes:
        """Decrypt a token made by `encrypt` under any data-encryption key in this keyring.

        Raises DecryptionError if the token is malformed, names an unknown key id, or fails
        authentication (wrong associated data, or the token was altered or moved).
        """
        parts = token.split(".")
        if len(parts) != 3:
            raise DecryptionError("malformed token: expected 3 dot-separated parts")
        version, kid, payload = parts
        if version != CIPHERTEXT_VERSION:
            raise DecryptionError(f"unsupported token version: expected {CIPHERTEXT_VERSION!r}")
        key = self._data_keys.get(kid)
        if key is None and self.refresh():
            key = self._data_keys.get(kid)
        if key is None:
            # The kid is not echoed: the token may come from anywhere.
            raise DecryptionError("unknown key id: no such data-encryption key in this keyring")
        try:
            raw = b64url_decode_nopad(payload)
        except ValueError:
            raise DecryptionError("malformed token: payload is not unpadded base64url") from None
        if len(raw) < GCM_NONCE_SIZE + GCM_TAG_SIZE:
            raise DecryptionError("malformed token: payload is shorter than nonce and tag")
        try:
            return aes_gcm_decrypt(
                key,
                nonce=raw[:GCM_NONCE_SIZE],
                ciphertext=raw[GCM_NONCE_SIZE:],
                associated_data=associated_data,
            )
        except DecryptionError:
            raise DecryptionError(
                "authentication failed: wrong associated data, or the token was altered"
            ) from None

    @property
    def data_key_kid(self) -> str:
        """Key id of the data-encryption key (the key-encryption key) that writes now."""
        return self._data_key.kid

    @staticmethod
    def token_kid(token: str) -> str | None:
        """The key id named by a token of `encrypt` or `wrap_data_key`, or None if it names
        none (a subject-key token, or a malformed one). Never decrypts."""
        parts = token.split(".")
        if len(parts) == 3 and parts[0] == CIPHERTEXT_VERSION:
            return parts[1]
        return None

    def new_data_key(self) -> DataKey:
        """A fresh random per-subject data key, to be stored only wrapped."""
        return DataKey(random_bytes(AES_256_KEY_SIZE))

    def wrap_data_key(self, key: DataKey, *, associated_data: bytes) -> str:
        """Encrypt `key` under the current key-encryption key (the data-encryption key);
        returns a token of `encrypt`'s form, naming that key's id."""
        return self.encrypt(key._secret, associated_data=associated_data)

    def unwrap_data_key(self, wrapped: str, *, associated_data: bytes) -> DataKey:
        """Open a key made by `wrap_data_key`, under any data-encryption key held.

        Raises DecryptionError as `decrypt` does, or if the result is not a 32-byte key.
        """
        secret = self.decrypt(wrapped, associated_data=associated_data)
        try:
            return DataKey(secret)
        except ValueError:
            raise DecryptionError("wrapped data key is not 32 bytes") from None

    @property
    def token_signing_kid(self) -> str:
        """Key id of the ES256 token-signing key: "tok-v1-" + 8 hex of its public key's SHA-256."""
        return self._signing_kid

    def token_signing_private_pem(self) -> bytes:
        """The ES256 private key as unencrypted PKCS8 PEM, for in-process JWT signing only.

        Re-reads the keystore now and then (see `refresh`) first, so a serving hub starts
        signing with a key rotated in by `hub keys rotate` within seconds; read
        `token_signing_kid` after this call, not before.
        """
        self.refresh()
        return p256_private_key_to_pkcs8_pem(self._signing_key)

    def token_signing_key(self) -> tuple[str, bytes]:
        """The current ES256 key id and private key (PKCS8 PEM), read together.

        Reading `token_signing_kid` and `token_signing_private_pem` in two calls can pair one
        key's id with the next key's signature when a rotation lands in between; a token so
        signed would be refused. Raises MasterKeyError and KeyStoreError as `refresh` does.
        """
        self.refresh()
        with self._refresh_lock:
            return self._signing_kid, p256_private_key_to_pkcs8_pem(self._signing_key)

    def token_signing_public_jwk(self) -> dict[str, str]:
        """The current ES256 public key as a JWK (RFC 7517/7518) carrying its kid."""
        return _public_jwk(self._signing_kid, self._signing_key)

    def token_signing_public_jwks(self) -> list[dict[str, str]]:
        """Every ES256 public key held and not retired, current first, so tokens and receipts
        signed before a rotation keep verifying.

        Re-reads the keystore now and then (see `refresh`), so a serving hub stops publishing a
        key retired by `hub keys retire` within seconds, without a restart.
        """
        self.refresh()
        return [_public_jwk(kid, key) for kid, key in self._signing_keys]

    def token_verifying_jwk(self, kid: str) -> dict[str, str] | None:
        """The public JWK of the signing key `kid`, or None if this keyring holds no such key."""
        for attempt in range(2):
            for held, key in self._signing_keys:
                if held == kid:
                    return _public_jwk(held, key)
            if attempt == 0 and not self.refresh():
                break
        return None

    @property
    def has_checkpoint_signing_key(self) -> bool:
        """Whether this keyring can sign audit checkpoints (older keystores cannot)."""
        return bool(self._checkpoint_keys)

    @property
    def checkpoint_signing_kid(self) -> str:
        """Key id of the Ed25519 checkpoint-signing key: "ckp-v1-" + 8 hex of its public key's
        SHA-256. Raises KeyStoreError if the keystore has no checkpoint-signing key."""
        return self._checkpoint_key()[0]

    def checkpoint_signing_private(self) -> ed25519.Ed25519PrivateKey:
        """The Ed25519 key that signs audit checkpoints, for in-process signing only.

        Raises KeyStoreError if the keystore has no checkpoint-signing key (a keystore written
        before checkpoints existed; `hub init` adds one).
        """
        return self._checkpoint_key()[1]

    def checkpoint_signing_public(self) -> bytes:
        """The 32-byte (RFC 8032) public key that verifies audit checkpoints.

        Raises KeyStoreError if the keystore has no checkpoint-signing key.
        """
        return ed25519_public_key_raw(self._checkpoint_key()[1].public_key())

    def checkpoint_verifying_keys(self) -> list[bytes]:
        """Every checkpoint public key this keyring holds, newest writer first, so checkpoints
        signed before a rotation still verify. Empty for a keystore without one."""
        return [ed25519_public_key_raw(key.public_key()) for _, key in self._checkpoint_keys]

    def _checkpoint_key(self) -> tuple[KeyId, ed25519.Ed25519PrivateKey]:
        if not self._checkpoint_keys:
            raise KeyStoreError(
                f"keystore has no {CHECKPOINT_SIGNING!r} key; run `hub init` to add one"
            )
        return self._checkpoint_keys[0]

    @property
    def has_bundle_signing_key(self) -> bool:
        """Whether this keyring can sign policy bundles (older keystores cannot)."""
        return bool(self._bundle_keys)

    @property
    def bundle_signing_kid(self) -> str:
        """Key id of the ES256 bundle-signing key: "bdl-v1-" + 8 hex of its public key's SHA-256.

        Raises KeyStoreError if the keystore has no bundle-signing key.
        """
        return self._bundle_key()[0]

    def bundle_signing_private_pem(self) -> bytes:
        """The ES256 key that signs policy bundles, as unencrypted PKCS8 PEM, for in-process
        signing only. Raises KeyStoreError if the keystore has no bundle-signing key."""
        return p256_private_key_to_pkcs8_pem(self._bundle_key()[1])

    def bundle_verifying_keys(self) -> list[tuple[str, bytes]]:
        """(kid, PEM public key) of every bundle-signing key held and not retired, the writer
        first, so bundles signed before a rotation still verify. Empty for an older keystore."""
        return [(kid, p256_public_key_to_pem(key.public_key())) for kid, key in self._bundle_keys]

    def _bundle_key(self) -> tuple[KeyId, ec.EllipticCurvePrivateKey]:
        if not self._bundle_keys:
            raise KeyStoreError(
                f"keystore has no {BUNDLE_SIGNING!r} key; run `hub init` to add one"
            )
        return self._bundle_keys[0]

    def key_ids(self) -> list[dict[str, str | None]]:
        """One entry per key, in keystore order: purpose, kid, version, created_at, retired_at
        (None unless retired) and state: "current" for the key that writes, "previous" for
        older keys that still read and verify, "retired" for keys used for nothing. No secrets.
        """
        seen: set[str] = set()
        entries: list[dict[str, str | None]] = []
        for key in self._keys:
            if key.retired_at is not None:
                state = RETIRED
            else:
                state = PREVIOUS if key.purpose in seen else CURRENT
                seen.add(key.purpose)
            entries.append(
                {
                    "purpose": key.purpose,
                    "kid": key.kid,
                    "version": key.version,
                    "created_at": key.created_at,
                    "retired_at": key.retired_at,
                    "state": state,
                }
            )
        return entries

    @classmethod
    def retire(
        cls,
        path: Path,
        *,
        master_key: bytes,
        purpose: str,
        version: str,
        now: datetime | None = None,
    ) -> KeyRing:
        """Retire the key of `purpose` and `version` in the keystore at `path`: from `now` on it
        writes, reads, verifies and resolves nothing, and is listed with its retirement date.

        The key material stays sealed in the keystore (nothing is destroyed by accident), but
        no keyring uses it again. Callers check first that nothing still needs it (data still
        encrypted under it, tokens still valid). Returns the keyring as now stored. Raises
        ValueError if there is no such key, it is already retired, or it is the current key of
        its purpose (rotate first); MasterKeyError and KeyStoreError as `open` does.
        """
        retired_at = rfc3339_utc(now if now is not None else datetime.now(UTC))

        def change(keys: list[StoredKey]) -> list[StoredKey]:
            index = next(
                (i for i, k in enumerate(keys) if k.purpose == purpose and k.version == version),
                None,
            )
            if index is None:
                raise ValueError(f"no {purpose!r} key of version {version!r}")
            key = keys[index]
            if key.retired_at is not None:
                raise ValueError(f"{purpose!r} key {version} is already retired")
            current = _first([k for k in keys if k.retired_at is None], purpose)
            if current.kid == key.kid:
                raise ValueError(
                    f"{purpose!r} key {version} is the current key; rotate first, then retire it"
                )
            return [*keys[:index], replace(key, retired_at=retired_at), *keys[index + 1 :]]

        ring = cls(update_keystore(path, master_key=master_key, change=change))
        ring._source = (path, master_key)
        return ring

    @classmethod
    def rotate(
        cls, path: Path, *, master_key: bytes, purpose: str, now: datetime | None = None
    ) -> KeyRing:
        """Add a new key of `purpose` to the keystore at `path`, as the one that writes.

        Older keys are kept, so everything they encrypted, signed or pseudonymised still reads,
        verifies and resolves. The new key's version is one more than the highest held.
        Returns the keyring as now stored. Raises ValueError for a purpose that cannot be
        rotated (see ROTATABLE_PURPOSES), MasterKeyError and KeyStoreError as `open` does.
        """
        if purpose not in ROTATABLE_PURPOSES:
            raise ValueError(f"purpose {purpose!r} cannot be rotated")
        created_at = rfc3339_utc(now if now is not None else datetime.now(UTC))

        def generate(existing: list[StoredKey]) -> StoredKey:
            numbers = [_version_number(k.version) for k in existing if k.purpose == purpose]
            return _generate(purpose, created_at, version=f"v{max(numbers, default=0) + 1}")

        ring = cls(rotate_key(path, master_key=master_key, purpose=purpose, generate=generate))
        ring._source = (path, master_key)
        return ring

    def refresh(self, *, force: bool = False) -> bool:
        """Re-read the keystore this keyring was opened from, taking in keys added by a rotation
        in another process (`hub keys rotate` while `hub serve` runs), so the hub keeps serving.

        Unless `force`, re-reads only when the file changed since it was last read (a `stat`),
        so it is cheap to call often, and tokens naming unknown key ids cannot make every
        request read and decrypt the file. Returns whether the keys were re-read.
        Raises MasterKeyError and KeyStoreError as `open` does.
        """
        if self._source is None:
            return False
        with self._refresh_lock:
            path, master_key = self._source
            try:
                stat = path.stat()
                signature: tuple[int, int, int] | None = (
                    stat.st_ino,
                    stat.st_mtime_ns,
                    stat.st_size,
                )
            except OSError:
                signature = None  # read_keystore below names the problem.
            if not force and signature is not None and signature == self._file_signature:
                return False
            fresh = KeyRing(read_keystore(path, master_key=master_key))
            self._file_signature = signature
            for name in _STATE_ATTRIBUTES:
                setattr(self, name, getattr(fresh, name))
            return True


def _first(keys: Sequence[StoredKey], purpose: str) -> StoredKey:
    for key in keys:
        if key.purpose == purpose:
            return key
    raise KeyStoreError(f"keystore has no {purpose!r} key")


def _public_jwk(kid: str, key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    x, y = p256_public_point(key.public_key())
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url_encode_nopad(x),
        "y": b64url_encode_nopad(y),
        "kid": kid,
        "alg": "ES256",
        "use": "sig",
    }


def _version_number(version: str) -> int:
    try:
        return int(version.removeprefix("v"))
    except ValueError:
        return 0


def _signing_kid(
    key: ec.EllipticCurvePrivateKey, version: str = KEY_VERSION, purpose: str = TOKEN_SIGNING
) -> KeyId:
    fingerprint = sha256(p256_public_key_to_der(key.public_key())).hex()[:8]
    return KeyId(f"{_KID_PREFIX[purpose]}-{version}-{fingerprint}")


def _p256_keys(
    keys: Sequence[StoredKey], purpose: str
) -> list[tuple[KeyId, ec.EllipticCurvePrivateKey]]:
    """The ES256 keys of `purpose`, in keystore order, each checked against its key id."""
    found: list[tuple[KeyId, ec.EllipticCurvePrivateKey]] = []
    for key in keys:
        if key.purpose != purpose:
            continue
        try:
            private = p256_private_key_from_scalar(key.secret)
        except ValueError:
            raise KeyStoreError(f"{purpose} key {key.kid} is not a P-256 key") from None
        if key.kid != _signing_kid(private, key.version, purpose):
            raise KeyStoreError(f"{purpose} key id {key.kid} does not match its key")
        found.append((key.kid, private))
    return found


def _checkpoint_kid(seed: bytes, version: str = KEY_VERSION) -> KeyId:
    public = ed25519_public_key_raw(ed25519_private_key_from_seed(seed).public_key())
    return KeyId(f"{_KID_PREFIX[CHECKPOINT_SIGNING]}-{version}-{sha256(public).hex()[:8]}")


def _generate(purpose: str, created_at: str, *, version: str = KEY_VERSION) -> StoredKey:
    if purpose in (TOKEN_SIGNING, BUNDLE_SIGNING):
        signing_key = generate_p256_private_key()
        secret = p256_private_key_to_scalar(signing_key)
        kid = _signing_kid(signing_key, version, purpose)
    elif purpose == CHECKPOINT_SIGNING:
        # The seed is the RFC 8032 private key. The kid is only a label (unlike the token key's,
        # it is not checked on open): verifiers identify the key by its signed-note key ID,
        # which is computed from the public key itself.
        secret = random_bytes(ED25519_SEED_SIZE)
        kid = _checkpoint_kid(secret, version)
    else:
        secret = random_bytes(AES_256_KEY_SIZE if purpose == DATA_ENCRYPTION else _ROOT_SECRET_SIZE)
        # A random suffix: deriving it from the secret would publish a hash of the secret.
        kid = KeyId(f"{_KID_PREFIX[purpose]}-{version}-{random_bytes(4).hex()}")
    return StoredKey(
        purpose=purpose,
        kid=kid,
        version=version,
        created_at=created_at,
        algorithm=_ALGORITHM[purpose],
        secret=secret,
    )
