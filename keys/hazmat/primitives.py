"""WARNING: raw cryptographic primitives, for use only inside `keys/`.

Nothing here chooses keys, nonces, associated data or domain separation for you; misuse
(a repeated GCM nonce, an HMAC key shared between purposes) silently breaks security. Code
outside `keys/` should use the recipes on `keys.KeyRing` instead.
"""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from keys.errors import DecryptionError

AES_256_KEY_SIZE = 32
GCM_NONCE_SIZE = 12
GCM_TAG_SIZE = 16
P256_SCALAR_SIZE = 32
ED25519_SEED_SIZE = 32


def random_bytes(size: int) -> bytes:
    """Return `size` bytes from the operating system's CSPRNG."""
    return secrets.token_bytes(size)


def sha256(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize()


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    mac = crypto_hmac.HMAC(key, hashes.SHA256())
    mac.update(message)
    return mac.finalize()


def hkdf_sha256(
    key_material: bytes, *, info: bytes, length: int = 32, salt: bytes | None = None
) -> bytes:
    """Derive `length` bytes with HKDF-SHA256 (RFC 5869).

    Raises ValueError if `length` is larger than HKDF-SHA256 can produce.
    """
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(key_material)


def scrypt_derive(
    passphrase: bytes, *, salt: bytes, length: int = 32, n: int = 2**15, r: int = 8, p: int = 1
) -> bytes:
    """Stretch `passphrase` with scrypt (RFC 7914). Raises ValueError for invalid parameters."""
    return Scrypt(salt=salt, length=length, n=n, r=r, p=p).derive(passphrase)


def aes_gcm_encrypt(key: bytes, *, nonce: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """Return ciphertext || 16-byte tag.

    Raises ValueError if the key is not 16, 24 or 32 bytes or the nonce is empty.
    """
    return AESGCM(key).encrypt(nonce, plaintext, associated_data)


def aes_gcm_decrypt(
    key: bytes, *, nonce: bytes, ciphertext: bytes, associated_data: bytes
) -> bytes:
    """Authenticate and decrypt ciphertext || tag.

    Raises DecryptionError if the tag does not verify (wrong key, wrong associated data,
    or altered nonce/ciphertext), and ValueError if the key has an invalid size.
    """
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, associated_data)
    except InvalidTag as exc:
        raise DecryptionError("AES-GCM authentication failed") from exc


def generate_p256_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def p256_private_key_to_scalar(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_numbers().private_value.to_bytes(P256_SCALAR_SIZE, "big")


def p256_private_key_from_scalar(scalar: bytes) -> ec.EllipticCurvePrivateKey:
    """Rebuild a P-256 private key from its 32-byte big-endian scalar.

    Raises ValueError if the scalar has the wrong size or is out of range for the curve.
    """
    if len(scalar) != P256_SCALAR_SIZE:
        raise ValueError(f"P-256 scalar must be {P256_SCALAR_SIZE} bytes, got {len(scalar)}")
    return ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP256R1())


def p256_private_key_to_pkcs8_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def p256_public_key_to_der(key: ec.EllipticCurvePublicKey) -> bytes:
    """Return the DER SubjectPublicKeyInfo encoding."""
    return key.public_bytes(
        encoding=serialization.Encoding.DER,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )


def p256_public_key_to_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    """Return the PEM SubjectPublicKeyInfo encoding."""
    return key.public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )


def p256_public_point(key: ec.EllipticCurvePublicKey) -> tuple[bytes, bytes]:
    """Return the affine (x, y) coordinates, each 32 bytes big-endian."""
    numbers = key.public_numbers()
    return (
        numbers.x.to_bytes(P256_SCALAR_SIZE, "big"),
        numbers.y.to_bytes(P256_SCALAR_SIZE, "big"),
    )


def ed25519_private_key_from_seed(seed: bytes) -> ed25519.Ed25519PrivateKey:
    """Rebuild an Ed25519 private key from its 32-byte seed (RFC 8032 private key).

    Raises ValueError if the seed is not 32 bytes.
    """
    if len(seed) != ED25519_SEED_SIZE:
        raise ValueError(f"Ed25519 seed must be {ED25519_SEED_SIZE} bytes, got {len(seed)}")
    return ed25519.Ed25519PrivateKey.from_private_bytes(seed)


def ed25519_public_key_raw(key: ed25519.Ed25519PublicKey) -> bytes:
    """Return the 32-byte RFC 8032 encoding of an Ed25519 public key."""
    return key.public_bytes(
        encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
    )
