"""Client assertions (RFC 7523), access tokens and passwords."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jose import jwt
from jose.backends.cryptography_backend import CryptographyECKey, CryptographyRSAKey
from sqlmodel import select

from hub.services.auth import verification_key
from hub.storage.models import User
from keys import KeyRing
from tests.api.conftest import POLICE, SCHOOL, Hub


def _error_code(response: Any) -> str:
    return str(response.json()["error"]["code"])


def test_valid_assertion_gives_a_short_lived_token(hub: Hub) -> None:
    response = hub.token_response(hub.assertion(SCHOOL))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert 0 < body["expires_in"] <= 600
    claims = jwt.get_unverified_claims(body["access_token"])
    assert claims["exp"] - claims["iat"] <= 600
    assert claims["agency"] == SCHOOL


def test_replayed_assertion_is_refused(hub: Hub) -> None:
    assertion = hub.assertion(SCHOOL)
    assert hub.token_response(assertion).status_code == 200

    replay = hub.token_response(assertion)

    assert replay.status_code == 401
    assert "already been used" in replay.json()["error"]["message"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"audience": "https://elsewhere.example/v1/token"}, "rejected"),
        ({"lifetime": timedelta(hours=2)}, "longer than"),
        ({"lifetime": timedelta(seconds=-30)}, "expired"),
        ({"kid": "unknown-kid"}, "no registered key"),
    ],
)
def test_bad_assertions_are_refused(hub: Hub, overrides: dict[str, Any], message: str) -> None:
    response = hub.token_response(hub.assertion(SCHOOL, **overrides))

    assert response.status_code == 401
    assert _error_code(response) == "unauthenticated"
    assert message in response.json()["error"]["message"]


def test_assertion_signed_with_another_agencys_key_is_refused(hub: Hub) -> None:
    school = hub.clients[SCHOOL]
    police = hub.clients[POLICE]
    forged = hub.assertion(SCHOOL, private_key_pem=police["private_key_pem"], kid=school["kid"])

    response = hub.token_response(forged)

    assert response.status_code == 401


@pytest.mark.parametrize("alg", ["HS256", "none"])
def test_symmetric_and_unsigned_assertions_are_refused(hub: Hub, alg: str) -> None:
    school = hub.clients[SCHOOL]
    claims = jwt.get_unverified_claims(hub.assertion(SCHOOL))
    if alg == "none":
        import base64
        import json

        def b64(data: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

        token = f"{b64({'alg': 'none', 'kid': school['kid']})}.{b64(claims)}."
    else:
        # The classic confusion attack: the public key used as an HMAC secret.
        token = jwt.encode(
            claims, "not-a-real-secret", algorithm=alg, headers={"kid": school["kid"]}
        )

    response = hub.token_response(token)

    assert response.status_code == 401


def test_wrong_grant_type_is_a_clear_client_error(hub: Hub) -> None:
    response = hub.client.post(
        "/v1/token", data={"grant_type": "password", "client_assertion": "x"}
    )
    assert response.status_code == 422
    assert "grant_type" in response.json()["error"]["message"]


def test_keys_are_built_on_the_cryptography_backend(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """python-jose also installs the pure-Python `ecdsa` package (timing weakness); prove no
    key of ours goes through it: make that backend explode and authenticate anyway."""
    import jose.backends.ecdsa_backend as ecdsa_backend

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("the ecdsa backend was used")

    monkeypatch.setattr(ecdsa_backend.ECDSAECKey, "__init__", refuse)
    monkeypatch.setattr(ecdsa_backend.ECDSAECKey, "verify", refuse)

    headers = hub.agency_headers(SCHOOL)
    assert hub.client.get("/v1/cases/unknown", headers=headers).status_code == 404

    ec_key = verification_key(hub.state.keyring.token_signing_public_jwk(), "ES256")
    assert isinstance(ec_key, CryptographyECKey)
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jose import jwk

    rsa_public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    pem = rsa_public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    rsa_jwk = jwk.construct(pem.decode(), "RS256").to_dict()
    assert isinstance(verification_key(rsa_jwk, "RS256"), CryptographyRSAKey)


def test_forged_access_token_is_refused(hub: Hub) -> None:
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    genuine = jwt.get_unverified_claims(hub.agency_headers(SCHOOL)["Authorization"][7:])
    forged = jwt.encode(
        genuine,
        other.decode(),
        algorithm="ES256",
        headers={"kid": hub.state.keyring.token_signing_kid},
    )

    response = hub.client.get("/v1/cases/x", headers={"Authorization": f"Bearer {forged}"})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_expired_access_token_is_refused(hub: Hub) -> None:
    hub.now[0] = hub.now[0] - timedelta(minutes=30)  # issue the token in the past
    headers = hub.agency_headers(SCHOOL)
    hub.now[0] = hub.now[0] + timedelta(minutes=30)

    response = hub.client.get("/v1/cases/x", headers=headers)

    assert response.status_code == 401
    assert _error_code(response) == "unauthenticated"


def test_missing_token_is_refused(hub: Hub) -> None:
    response = hub.client.get("/v1/cases/x")
    assert response.status_code == 401


def test_people_log_in_with_argon2_hashed_passwords(hub: Hub) -> None:
    with hub.session() as session:
        stored = session.exec(select(User)).all()
    assert stored and all(u.password_hash.startswith("$argon2id$") for u in stored)
    assert hub.user_headers("coordinator")["Authorization"].startswith("Bearer ")

    wrong = hub.client.post("/v1/login", json={"username": "coordinator", "password": "wrong"})
    unknown = hub.client.post("/v1/login", json={"username": "nobody", "password": "wrong"})

    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()  # never says which part was wrong


def test_failed_sign_ins_still_count_after_a_blind_index_key_rotation(hub: Hub) -> None:
    # Account names are counted under a keyed hash; rotating that key must not wipe the count.
    password = hub.users["coordinator"]["password"]
    for _ in range(hub.settings.sign_in_max_failures - 1):
        wrong = hub.client.post(
            "/v1/login", json={"username": "coordinator", "password": "not-the-password"}
        )
        assert wrong.status_code == 401
    assert hub.settings.master_key is not None
    KeyRing.rotate(
        hub.settings.keystore_path,
        master_key=base64.b64decode(hub.settings.master_key.get_secret_value()),
        purpose="blind-index",
        now=hub.state.clock(),
    )
    hub.state.keyring.refresh()  # as the serving hub does before its next subject lookup
    last = hub.client.post(
        "/v1/login", json={"username": "coordinator", "password": "not-the-password"}
    )
    assert last.status_code == 401

    locked = hub.client.post("/v1/login", json={"username": "coordinator", "password": password})

    assert locked.status_code == 401
    assert "access_token" not in locked.text


def test_script_logins_share_the_lockout_of_the_web_sign_in(hub: Hub) -> None:
    password = hub.users["coordinator"]["password"]
    for _ in range(hub.settings.sign_in_max_failures):
        wrong = hub.client.post(
            "/v1/login", json={"username": "coordinator", "password": "not-the-password"}
        )
        assert wrong.status_code == 401

    locked = hub.client.post("/v1/login", json={"username": "coordinator", "password": password})

    # The right password no longer helps, and the answer does not say the account is locked.
    assert locked.status_code == 401
    assert locked.json()["error"]["message"] == wrong.json()["error"]["message"]
    assert "access_token" not in locked.text
    # Another person is not affected.
    assert (
        hub.client.post(
            "/v1/login", json={"username": "dpo", "password": hub.users["dpo"]["password"]}
        ).status_code
        == 200
    )
