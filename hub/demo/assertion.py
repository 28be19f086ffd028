"""Client assertions (RFC 7523) as an agency system makes them; used by the demo and tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from jose import jwt


def make_client_assertion(
    *,
    client_id: str,
    kid: str,
    private_key_pem: str,
    audience: str,
    alg: str = "ES256",
    lifetime: timedelta = timedelta(seconds=60),
    now: datetime | None = None,
    jti: str | None = None,
) -> str:
    issued = now or datetime.now(UTC)
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": int(issued.timestamp()),
        "exp": int((issued + lifetime).timestamp()),
        "jti": jti or str(uuid.uuid4()),
    }
    token: str = jwt.encode(claims, private_key_pem, algorithm=alg, headers={"kid": kid})
    return token
