from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keys import DecryptionError, KeyRing
from keys.hazmat import hkdf_sha256, hmac_sha256

from .conftest import unseal

AD = b"record:42/attribute:name"
TOKEN_RE = re.compile(r"v1\.dek-v1-[0-9a-f]{8}\.[A-Za-z0-9_-]+")


def _root_secret(path: Path, master_key: bytes, purpose: str) -> bytes:
    (entry,) = [k for k in unseal(path, master_key)["keys"] if k["purpose"] == purpose]
    return base64.b64decode(entry["secret"])


def _flip_bit(token: str, index: int) -> str:
    version, kid, payload = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw[index] ^= 0x01
    return f"{version}.{kid}.{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"


# --- pseudonyms ---------------------------------------------------------------------------


def test_pseudonym_is_deterministic_per_domain(ring: KeyRing) -> None:
    first = ring.pseudonym(domain="police", value="subject-1")
    assert ring.pseudonym(domain="police", value="subject-1") == first
    assert re.fullmatch(r"v1\.[a-z2-7]{32}", first)
    assert len(first) == 35


def test_pseudonym_differs_across_domains_and_values(ring: KeyRing) -> None:
    police = ring.pseudonym(domain="police", value="subject-1")
    school = ring.pseudonym(domain="school", value="subject-1")
    other = ring.pseudonym(domain="police", value="subject-2")
    assert len({police, school, other}) == 3


def test_pseudonym_differs_across_keyrings(tmp_path: Path, master_key: bytes) -> None:
    one = KeyRing.create(tmp_path / "one.json", master_key=master_key)
    two = KeyRing.create(tmp_path / "two.json", master_key=master_key)
    assert one.pseudonym(domain="d", value="v") != two.pseudonym(domain="d", value="v")


def test_pseudonym_follows_the_documented_derivation(
    ring: KeyRing, keystore_path: Path, master_key: bytes
) -> None:
    # Pins the construction: changing it would silently re-key every stored pseudonym.
    root = _root_secret(keystore_path, master_key, "pseudonym-root")
    domain_key = hkdf_sha256(root, info=b"hub/pseudonym/v1/school")
    digest = hmac_sha256(domain_key, "Åsa Ødegård".encode())[:20]
    expected = "v1." + base64.b32encode(digest).decode().lower()
    assert ring.pseudonym(domain="school", value="Åsa Ødegård") == expected


# --- blind indexes ------------------------------------------------------------------------


def test_blind_index_is_deterministic_per_kind(ring: KeyRing) -> None:
    index = ring.blind_index(kind="national-id", value="123")
    assert ring.blind_index(kind="national-id", value="123") == index
    assert re.fullmatch(r"[0-9a-f]{64}", index)
    assert ring.blind_index(kind="name", value="123") != index
    assert ring.blind_index(kind="national-id", value="124") != index


def test_blind_index_follows_the_documented_derivation(
    ring: KeyRing, keystore_path: Path, master_key: bytes
) -> None:
    root = _root_secret(keystore_path, master_key, "blind-index")
    kind_key = hkdf_sha256(root, info=b"hub/blind-index/v1/national-id")
    assert ring.blind_index(kind="national-id", value="123") == hmac_sha256(kind_key, b"123").hex()


# --- encryption ---------------------------------------------------------------------------


@pytest.mark.parametrize("plaintext", [b"", b"Jane Doe", bytes(range(256)) * 40])
def test_encrypt_decrypt_round_trip(ring: KeyRing, plaintext: bytes) -> None:
    token = ring.encrypt(plaintext, associated_data=AD)
    assert TOKEN_RE.fullmatch(token)
    assert ring.decrypt(token, associated_data=AD) == plaintext


def test_encrypt_uses_a_fresh_nonce_unless_given(ring: KeyRing) -> None:
    assert ring.encrypt(b"x", associated_data=AD) != ring.encrypt(b"x", associated_data=AD)
    nonce = bytes(12)
    fixed = ring.encrypt(b"x", associated_data=AD, nonce=nonce)
    assert ring.encrypt(b"x", associated_data=AD, nonce=nonce) == fixed
    payload = fixed.split(".")[2]
    assert base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))[:12] == nonce


def test_encrypt_refuses_a_nonce_of_the_wrong_size(ring: KeyRing) -> None:
    with pytest.raises(ValueError, match="nonce must be 12 bytes, got 8"):
        ring.encrypt(b"x", associated_data=AD, nonce=bytes(8))


def test_token_names_the_data_key(ring: KeyRing) -> None:
    token = ring.encrypt(b"x", associated_data=AD)
    (data_key,) = [k for k in ring.key_ids() if k["purpose"] == "data-encryption"]
    assert token.split(".")[1] == data_key["kid"]


def test_decrypt_with_wrong_associated_data_fails(ring: KeyRing) -> None:
    token = ring.encrypt(b"Jane Doe", associated_data=AD)
    with pytest.raises(DecryptionError, match="authentication failed") as info:
        ring.decrypt(token, associated_data=b"record:42/attribute:dob")
    assert "Jane" not in str(info.value)
    assert "record:42" not in str(info.value)


def test_decrypt_of_a_ciphertext_moved_to_another_record_fails(ring: KeyRing) -> None:
    # Binding the record id into the associated data is what stops a row's ciphertext
    # being copied into another row.
    token = ring.encrypt(b"Jane Doe", associated_data=b"record:1/name")
    with pytest.raises(DecryptionError, match="authentication failed"):
        ring.decrypt(token, associated_data=b"record:2/name")


@pytest.mark.parametrize("index", [0, 11, 12, -1], ids=["nonce", "nonce-end", "body", "tag"])
def test_decrypt_of_a_flipped_bit_fails(ring: KeyRing, index: int) -> None:
    token = ring.encrypt(b"Jane Doe", associated_data=AD)
    with pytest.raises(DecryptionError, match="authentication failed"):
        ring.decrypt(_flip_bit(token, index), associated_data=AD)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda t: "garbage", "malformed token: expected 3 dot-separated parts"),
        (lambda t: t + ".extra", "malformed token: expected 3 dot-separated parts"),
        (lambda t: "v2" + t[2:], "unsupported token version"),
        (lambda t: t.replace("dek-v1-", "dek-v9-"), "unknown key id"),
        (lambda t: t.rsplit(".", 1)[0] + ".***", "payload is not unpadded base64url"),
        (lambda t: t + "==", "payload is not unpadded base64url"),
        (lambda t: t.rsplit(".", 1)[0] + ".AAAA", "payload is shorter than nonce and tag"),
        (lambda t: t.rsplit(".", 1)[0] + ".A", "payload is not unpadded base64url"),
    ],
    ids=[
        "no-dots",
        "four-parts",
        "version",
        "unknown-kid",
        "bad-alphabet",
        "padded",
        "short",
        "impossible-length",
    ],
)
def test_decrypt_of_a_malformed_token_names_the_check(
    ring: KeyRing, mangle: object, message: str
) -> None:
    token = ring.encrypt(b"Jane Doe", associated_data=AD)
    assert callable(mangle)
    with pytest.raises(DecryptionError, match=message):
        ring.decrypt(mangle(token), associated_data=AD)


def test_decrypt_of_another_keyrings_token_fails(
    ring: KeyRing, tmp_path: Path, master_key: bytes
) -> None:
    other = KeyRing.create(tmp_path / "other.json", master_key=master_key)
    with pytest.raises(DecryptionError, match="unknown key id"):
        ring.decrypt(other.encrypt(b"x", associated_data=AD), associated_data=AD)


# --- token signing ------------------------------------------------------------------------


def test_public_jwk_verifies_a_signature_from_the_private_pem(ring: KeyRing) -> None:
    private_key = serialization.load_pem_private_key(ring.token_signing_private_pem(), None)
    assert isinstance(private_key, ec.EllipticCurvePrivateKey)
    assert ring.token_signing_private_pem().startswith(b"-----BEGIN PRIVATE KEY-----")
    signature = private_key.sign(b"header.payload", ec.ECDSA(hashes.SHA256()))

    jwk = ring.token_signing_public_jwk()
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "P-256", "ES256", "sig")
    assert jwk["kid"] == ring.token_signing_kid
    assert "=" not in jwk["x"] + jwk["y"]
    x = int.from_bytes(base64.urlsafe_b64decode(jwk["x"] + "="), "big")
    y = int.from_bytes(base64.urlsafe_b64decode(jwk["y"] + "="), "big")
    public_key = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    public_key.verify(signature, b"header.payload", ec.ECDSA(hashes.SHA256()))


def test_token_signing_kid_is_the_public_key_fingerprint(ring: KeyRing) -> None:
    private_key = serialization.load_pem_private_key(ring.token_signing_private_pem(), None)
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashes.Hash(hashes.SHA256())
    digest.update(der)
    assert ring.token_signing_kid == "tok-v1-" + digest.finalize().hex()[:8]


# --- key listing --------------------------------------------------------------------------


def test_key_ids_list_every_key_without_secrets(keystore_path: Path, master_key: bytes) -> None:
    now = datetime(2024, 5, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    ring = KeyRing.create(keystore_path, master_key=master_key, now=now)
    listed = ring.key_ids()
    assert [k["purpose"] for k in listed] == [
        "pseudonym-root",
        "blind-index",
        "data-encryption",
        "token-signing",
        "checkpoint-signing",
        "bundle-signing",
    ]
    for entry in listed:
        assert set(entry) == {"purpose", "kid", "version", "created_at", "retired_at", "state"}
        assert entry["version"] == "v1"
        assert entry["created_at"] == "2024-05-01T12:00:00Z"
        assert entry["retired_at"] is None
        assert entry["state"] == "current"
        assert re.fullmatch(r"(psn|bix|dek|tok|ckp|bdl)-v1-[0-9a-f]{8}", str(entry["kid"]))
    assert len({k["kid"] for k in listed}) == 6
    listing = repr(listed)
    for stored in unseal(keystore_path, master_key)["keys"]:
        assert stored["secret"] not in listing


def test_create_refuses_a_naive_timestamp(keystore_path: Path, master_key: bytes) -> None:
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        KeyRing.create(keystore_path, master_key=master_key, now=datetime(2024, 5, 1))
    assert not keystore_path.exists()


def test_created_at_defaults_to_now(keystore_path: Path, master_key: bytes) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    ring = KeyRing.create(keystore_path, master_key=master_key)
    after = datetime.now(UTC)
    for entry in ring.key_ids():
        stamp = datetime.strptime(str(entry["created_at"]), "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=UTC
        )
        assert before <= stamp <= after
