"""WARNING: raw cryptographic primitives, for use only inside `keys/`.

An import of `keys.hazmat` from outside `keys/` is a question for review; use `keys.KeyRing`.
"""

from __future__ import annotations

from keys.hazmat.primitives import (
    AES_256_KEY_SIZE,
    ED25519_SEED_SIZE,
    GCM_NONCE_SIZE,
    GCM_TAG_SIZE,
    P256_SCALAR_SIZE,
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
    scrypt_derive,
    sha256,
)

__all__ = [
    "AES_256_KEY_SIZE",
    "ED25519_SEED_SIZE",
    "GCM_NONCE_SIZE",
    "GCM_TAG_SIZE",
    "P256_SCALAR_SIZE",
    "aes_gcm_decrypt",
    "aes_gcm_encrypt",
    "ed25519_private_key_from_seed",
    "ed25519_public_key_raw",
    "generate_p256_private_key",
    "hkdf_sha256",
    "hmac_sha256",
    "p256_private_key_from_scalar",
    "p256_private_key_to_pkcs8_pem",
    "p256_private_key_to_scalar",
    "p256_public_key_to_der",
    "p256_public_key_to_pem",
    "p256_public_point",
    "random_bytes",
    "scrypt_derive",
    "sha256",
]
