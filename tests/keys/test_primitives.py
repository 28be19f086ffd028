from __future__ import annotations

import pytest

from keys import DecryptionError
from keys.hazmat import (
    aes_gcm_decrypt,
    aes_gcm_encrypt,
    generate_p256_private_key,
    hkdf_sha256,
    hmac_sha256,
    p256_private_key_from_scalar,
    p256_private_key_to_scalar,
)


def test_hkdf_sha256_rfc5869_test_case_1() -> None:
    # RFC 5869, Appendix A.1 (Test Case 1).
    okm = hkdf_sha256(
        bytes.fromhex("0b" * 22),
        salt=bytes.fromhex("000102030405060708090a0b0c"),
        info=bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"),
        length=42,
    )
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


@pytest.mark.parametrize(
    ("key", "data", "expected"),
    [
        # RFC 4231, section 4.2 (Test Case 1).
        (
            bytes.fromhex("0b" * 20),
            b"Hi There",
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        ),
        # RFC 4231, section 4.3 (Test Case 2).
        (
            b"Jefe",
            b"what do ya want for nothing?",
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        ),
    ],
)
def test_hmac_sha256_rfc4231(key: bytes, data: bytes, expected: str) -> None:
    assert hmac_sha256(key, data).hex() == expected


def test_aes_256_gcm_mcgrew_viega_test_case_14() -> None:
    # "The Galois/Counter Mode of Operation (GCM)", McGrew and Viega, Appendix B, Test Case 14:
    # 256-bit zero key, 96-bit zero IV, one zero block, no associated data.
    sealed = aes_gcm_encrypt(bytes(32), nonce=bytes(12), plaintext=bytes(16), associated_data=b"")
    assert sealed.hex() == "cea7403d4d606b6e074ec5d3baf39d18" + "d0d1c8a799996bf0265b98b5d48ab919"
    assert aes_gcm_decrypt(bytes(32), nonce=bytes(12), ciphertext=sealed, associated_data=b"") == (
        bytes(16)
    )


def test_aes_gcm_decrypt_wraps_invalid_tag() -> None:
    sealed = aes_gcm_encrypt(bytes(32), nonce=bytes(12), plaintext=b"x", associated_data=b"a")
    with pytest.raises(DecryptionError, match="AES-GCM authentication failed"):
        aes_gcm_decrypt(bytes(32), nonce=bytes(12), ciphertext=sealed, associated_data=b"b")


def test_p256_scalar_round_trip() -> None:
    key = generate_p256_private_key()
    scalar = p256_private_key_to_scalar(key)
    assert len(scalar) == 32
    again = p256_private_key_from_scalar(scalar)
    assert again.private_numbers() == key.private_numbers()


def test_p256_scalar_of_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError, match="P-256 scalar must be 32 bytes, got 31"):
        p256_private_key_from_scalar(bytes(31))
