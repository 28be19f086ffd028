"""Forged, altered, stolen and misused tokens are refused.

Access tokens are tried against a case the genuine token can read, so a 401 proves the attack
failed and not that the route was closed anyway. Client assertions are tried at /v1/token.
The first few attacks on client assertions live in tests/api/test_auth.py (expired, too long,
wrong audience, unknown kid, another agency's key under this agency's kid, HS256 with a made-up
secret, `alg: none`, replay of the same assertion); this file adds the rest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jose import jwk as jose_jwk
from jose import jwt
from sqlmodel import select

from hub.services.auth import MAX_TOKEN_CHARS
from hub.storage.models import ApiClient, User
from tests.api.conftest import POLICE, SCHOOL, Hub
from tests.api.flows import case_in_assessment, record_consent, refer_alex

# ---------------------------------------------------------------------------------------------
# Building tokens by hand


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _json(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_json(header)}.{_json(claims)}."


def hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """An HS256 JWT made by hand: libraries refuse a public key as an HMAC secret, attackers
    do not."""
    signing_input = f"{_json({**header, 'alg': 'HS256'})}.{_json(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _token_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def _is_refusal(response: Any) -> bool:
    return (
        response.status_code == 401
        and response.json()["error"]["code"] == "unauthenticated"
        and response.headers.get("www-authenticate") == "Bearer"
        and "access_token" not in response.text
    )


def _refused(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthenticated"
    assert response.headers["www-authenticate"] == "Bearer"


# ---------------------------------------------------------------------------------------------
# Access tokens


class Forge:
    """The hub's genuine access token for the school, and ways to bend it."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.token = _token_of(hub.agency_headers(SCHOOL))
        self.header = jwt.get_unverified_header(self.token)
        self.claims = jwt.get_unverified_claims(self.token)
        self.private_pem = hub.state.keyring.token_signing_private_pem().decode()
        self.public_jwk = hub.state.keyring.token_signing_public_jwk()

    @property
    def now(self) -> int:
        return int(self.hub.state.clock().timestamp())

    def signed(self, *, header: dict[str, Any] | None = None, **claims: Any) -> str:
        """Signed with the hub's real key: only what the test changed is wrong."""
        return str(
            jwt.encode(
                {**self.claims, **claims},
                self.private_pem,
                algorithm="ES256",
                headers={**{k: v for k, v in self.header.items() if k != "alg"}, **(header or {})},
            )
        )

    def public_pem(self) -> bytes:
        private = serialization.load_pem_private_key(self.private_pem.encode(), password=None)
        return private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def _alg_none(f: Forge) -> str:
    return unsigned({**f.header, "alg": "none"}, f.claims)


def _hs256_with_public_pem(f: Forge) -> str:
    return hs256(f.header, f.claims, f.public_pem())


def _hs256_with_public_jwk(f: Forge) -> str:
    return hs256(f.header, f.claims, json.dumps(f.public_jwk).encode())


def _tampered_payload(f: Forge) -> str:
    head, _, signature = f.token.split(".")
    escalated = {**f.claims, "roles": ["dpo"], "agency": POLICE}
    return f"{head}.{_json(escalated)}.{signature}"


def _other_key_own_jwk_in_header(f: Forge) -> str:
    # The attacker signs with their own key and offers its public half in the header.
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    embedded = jose_jwk.construct(public.decode(), "ES256").to_dict()
    return str(
        jwt.encode(f.claims, pem.decode(), algorithm="ES256", headers={**f.header, "jwk": embedded})
    )


ACCESS_TOKEN_ATTACKS: dict[str, Callable[[Forge], str]] = {
    "alg none": _alg_none,
    "HS256 keyed with the hub's public key (PEM)": _hs256_with_public_pem,
    "HS256 keyed with the hub's public key (JWK)": _hs256_with_public_jwk,
    "tampered payload": _tampered_payload,
    "own key offered in the jwk header": _other_key_own_jwk_in_header,
    "wrong audience": lambda f: f.signed(aud="another-api"),
    "wrong issuer": lambda f: f.signed(iss="https://hub.elsewhere.example"),
    "expired": lambda f: f.signed(iat=f.now - 600, exp=f.now - 1),
    "not yet valid (nbf)": lambda f: f.signed(nbf=f.now + 600, exp=f.now + 900),
    "issued in the future (iat)": lambda f: f.signed(iat=f.now + 600, exp=f.now + 900),
    "no typ (another JWT the hub signs)": lambda f: f.signed(header={"typ": "JWT"}),
    "kid that points nowhere": lambda f: f.signed(header={"kid": "tok-v1-00000000"}),
    "kid path traversal": lambda f: f.signed(header={"kid": "../../keystore.json"}),
    "kid absolute path": lambda f: f.signed(header={"kid": "/etc/passwd"}),
    "kid URL": lambda f: f.signed(header={"kid": "file:///dev/zero"}),
    "kid with a NUL byte": lambda f: f.signed(header={"kid": f.header["kid"] + "\x00x"}),
    "kid not a string": lambda f: f.signed(header={"kid": [f.header["kid"]]}),
    "kid very long": lambda f: f.signed(header={"kid": "k" * 4000}),
    "oversized (genuinely signed)": lambda f: f.signed(pad="x" * (MAX_TOKEN_CHARS * 2)),
}


def test_bent_access_tokens_are_refused(hub: Hub) -> None:
    # One hub for every attack (a hub per attack would cost seconds each); each attack is
    # reported by name.
    case_id = refer_alex(hub)["id"]
    forge = Forge(hub)
    assert hub.client.get(f"/v1/cases/{case_id}", headers=_bearer(forge.token)).status_code == 200

    answers = {
        attack: hub.client.get(f"/v1/cases/{case_id}", headers=_bearer(make(forge)))
        for attack, make in ACCESS_TOKEN_ATTACKS.items()
    }

    accepted = {a: r.status_code for a, r in answers.items() if not _is_refusal(r)}
    assert accepted == {}
    assert hub.client.get(f"/v1/cases/{case_id}", headers=_bearer(forge.token)).status_code == 200


def test_a_client_assertion_is_not_an_access_token(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    response = hub.client.get(f"/v1/cases/{case_id}", headers=_bearer(hub.assertion(SCHOOL)))
    _refused(response)


def test_a_consent_receipt_is_not_an_access_token(hub: Hub) -> None:
    """Receipts are signed with the same key as access tokens; their `typ` tells them apart."""
    case_id = case_in_assessment(hub)
    consent = record_consent(hub, case_id)
    receipt = hub.client.get(
        f"/v1/consents/{consent['id']}/receipt", headers=hub.user_headers("coordinator")
    ).json()["receipt"]
    forge = Forge(hub)
    # Even dressed as an access token (the hub's own signature, access-token claims added),
    # a receipt's header still says what it is.
    receipt_claims = jwt.get_unverified_claims(receipt)
    dressed = jwt.encode(
        {**receipt_claims, **forge.claims},
        forge.private_pem,
        algorithm="ES256",
        headers=jwt.get_unverified_header(receipt),
    )

    for token in (receipt, dressed):
        _refused(hub.client.get(f"/v1/cases/{case_id}", headers=_bearer(token)))


def test_an_oversized_bearer_header_is_refused_without_parsing(hub: Hub) -> None:
    response = hub.client.get("/v1/cases/x", headers=_bearer("a" * 200_000))
    _refused(response)


def test_tokens_of_a_disabled_client_stop_working_at_once(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    headers = hub.agency_headers(SCHOOL)
    assert hub.client.get(f"/v1/cases/{case_id}", headers=headers).status_code == 200
    client_id = hub.clients[SCHOOL]["client_id"]
    with hub.session() as session:
        client = session.get(ApiClient, client_id)
        assert client is not None
        client.active = False
        session.add(client)
        session.commit()

    _refused(hub.client.get(f"/v1/cases/{case_id}", headers=headers))
    fresh = hub.token_response(hub.assertion(SCHOOL))
    _refused(fresh)
    assert fresh.json()["error"]["message"] == "unknown client"


def test_tokens_of_a_disabled_person_stop_working_at_once(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    headers = hub.user_headers("coordinator")
    assert hub.client.get(f"/v1/cases/{case_id}", headers=headers).status_code == 200
    with hub.session() as session:
        user = session.exec(select(User).where(User.username == "coordinator")).one()
        user.active = False
        session.add(user)
        session.commit()

    _refused(hub.client.get(f"/v1/cases/{case_id}", headers=headers))
    password = hub.users["coordinator"]["password"]
    _refused(hub.client.post("/v1/login", json={"username": "coordinator", "password": password}))


# ---------------------------------------------------------------------------------------------
# Client assertions (RFC 7523) at /v1/token


def _assertion_claims(hub: Hub, client_id: str, **changes: Any) -> dict[str, Any]:
    now = int(hub.state.clock().timestamp())
    claims: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": hub.settings.token_endpoint,
        "iat": now,
        "exp": now + 60,
        "jti": str(uuid.uuid4()),
    }
    claims.update(changes)
    return claims


def _signed_by(hub: Hub, agency: str, claims: dict[str, Any], **header: Any) -> str:
    client = hub.clients[agency]
    headers = {"kid": client["kid"], **header}
    return str(jwt.encode(claims, client["private_key_pem"], algorithm="ES256", headers=headers))


def _school_public_pem(hub: Hub) -> bytes:
    private = serialization.load_pem_private_key(
        hub.clients[SCHOOL]["private_key_pem"].encode(), password=None
    )
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _as_school(**changes: Any) -> Callable[[Hub], str]:
    def make(hub: Hub) -> str:
        claims = _assertion_claims(hub, hub.clients[SCHOOL]["client_id"], **changes)
        return _signed_by(hub, SCHOOL, claims)

    return make


def _now(hub: Hub) -> int:
    return int(hub.state.clock().timestamp())


def _hs256_with_clients_public_key(hub: Hub) -> str:
    claims = _assertion_claims(hub, hub.clients[SCHOOL]["client_id"])
    return hs256({"kid": hub.clients[SCHOOL]["kid"], "typ": "JWT"}, claims, _school_public_pem(hub))


def _police_key_claiming_to_be_the_school(hub: Hub) -> str:
    # The police system signs with its own key and kid but names the school as issuer.
    claims = _assertion_claims(hub, hub.clients[SCHOOL]["client_id"])
    return _signed_by(hub, POLICE, claims)


def _school_key_claiming_to_be_the_police(hub: Hub) -> str:
    claims = _assertion_claims(hub, hub.clients[POLICE]["client_id"])
    return _signed_by(hub, SCHOOL, claims, kid=None)


def _tampered_assertion(hub: Hub) -> str:
    genuine = hub.assertion(SCHOOL)
    head, body, signature = genuine.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["exp"] += 60  # stretch its life a little
    return f"{head}.{_json(claims)}.{signature}"


def _kid(kid: Any) -> Callable[[Hub], str]:
    def make(hub: Hub) -> str:
        claims = _assertion_claims(hub, hub.clients[SCHOOL]["client_id"])
        return _signed_by(hub, SCHOOL, claims, kid=kid)

    return make


ASSERTION_ATTACKS: dict[str, tuple[Callable[[Hub], str], str]] = {
    "HS256 keyed with the client's own public key": (
        _hs256_with_clients_public_key,
        "must be ES256 or RS256",
    ),
    "another client's key and kid, this client's name": (
        _police_key_claiming_to_be_the_school,
        "no registered key",
    ),
    "this client's key, another client's name": (
        _school_key_claiming_to_be_the_police,
        "rejected",
    ),
    "subject is not the issuer": (_as_school(sub="someone-else"), "rejected"),
    "not yet valid (nbf)": (
        lambda hub: _as_school(nbf=_now(hub) + 120, exp=_now(hub) + 180)(hub),
        "not valid yet",
    ),
    "issued in the future (iat)": (
        lambda hub: _as_school(iat=_now(hub) + 120, exp=_now(hub) + 180)(hub),
        "not valid yet",
    ),
    "tampered payload": (_tampered_assertion, "rejected"),
    "kid path traversal": (_kid("../../../var/keystore.json"), "no registered key"),
    "kid absolute path": (_kid("/etc/passwd"), "no registered key"),
    "kid not a string": (_kid({"$ne": ""}), "no registered key"),
    "oversized": (_as_school(pad="x" * (MAX_TOKEN_CHARS * 2)), "longer than"),
}


def test_bent_client_assertions_are_refused(hub: Hub) -> None:
    answers = {
        attack: hub.token_response(make(hub)) for attack, (make, _) in ASSERTION_ATTACKS.items()
    }

    wrong = {
        attack: (response.status_code, response.json()["error"]["message"])
        for attack, response in answers.items()
        if not _is_refusal(response) or ASSERTION_ATTACKS[attack][1] not in response.text
    }
    assert wrong == {}
    assert hub.token_response(hub.assertion(SCHOOL)).status_code == 200  # the genuine one works


def test_a_replayed_jti_is_refused_even_in_a_freshly_signed_assertion(hub: Hub) -> None:
    jti = str(uuid.uuid4())
    assert hub.token_response(hub.assertion(SCHOOL, jti=jti)).status_code == 200
    hub.now[0] += timedelta(seconds=5)

    replay = hub.token_response(hub.assertion(SCHOOL, jti=jti))

    _refused(replay)
    assert "already been used" in replay.json()["error"]["message"]


def test_a_jti_spent_by_one_client_does_not_block_another(hub: Hub) -> None:
    """Replay protection is per client: one agency cannot burn another's assertion ids."""
    jti = str(uuid.uuid4())
    assert hub.token_response(hub.assertion(POLICE, jti=jti)).status_code == 200
    assert hub.token_response(hub.assertion(SCHOOL, jti=jti)).status_code == 200


def test_an_access_token_is_not_a_client_assertion(hub: Hub) -> None:
    response = hub.token_response(_token_of(hub.agency_headers(SCHOOL)))
    _refused(response)
