"""Signed receipts: the requester's proof that its disclosure is on the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jose import jwt

from keys import KeyRing


def sign_receipt(*, keyring: KeyRing, issuer: str, claims: dict[str, Any], now: datetime) -> str:
    """A compact ES256 JWS over the receipt claims, verifiable with `/.well-known/jwks.json`."""
    body = {"iss": issuer, "iat": int(now.timestamp()), **claims}
    token: str = jwt.encode(
        body,
        keyring.token_signing_private_pem().decode(),
        algorithm="ES256",
        headers={"kid": keyring.token_signing_kid, "typ": "receipt+jwt"},
    )
    return token
