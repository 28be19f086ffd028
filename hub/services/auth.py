"""Authentication: client assertions (RFC 7523) for agency systems, passwords for people,
and the hub's own short-lived access tokens.

Every key handed to python-jose is built here as one of its `cryptography` backend classes,
so the pure-Python `ecdsa` package it also installs is never used to verify a signature.
"""

from __future__ import annotations

import functools
import logging
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from jose import JWTError, jwt
from jose.backends.cryptography_backend import CryptographyECKey, CryptographyRSAKey
from sqlalchemy import bindparam
from sqlalchemy import select as select_columns
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from hub.config import Settings
from hub.errors import BadRequest, Unauthenticated
from hub.schemas import TokenPublic
from hub.services.principals import AGENCY_SYSTEM, Principal
from hub.storage.db import reads_only
from hub.storage.models import ApiClient, PanelMembership, UsedAssertion, User
from keys import KeyRing, KeysError

log = logging.getLogger("hub.auth")

# Our own tokens are well under 1 KiB and an agency's RS256 assertion under 2 KiB; anything far
# larger is refused before it is parsed, so nobody makes the hub decode megabytes of base64.
MAX_TOKEN_CHARS = 8192
# An agency's clock may run a little ahead of the hub's; a token dated further ahead than this
# (`iat` or `nbf`) is not valid yet.
CLOCK_SKEW_SECONDS = 30
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105  (RFC 9068 media type, not a secret)
ASSERTION_ALGORITHMS = ("ES256", "RS256")
ACCESS_TOKEN_AUDIENCE = "hub-api"  # noqa: S105  (an audience name, not a secret)
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_KEY_CLASSES: dict[str, tuple[str, type[Any]]] = {
    "ES256": ("EC", CryptographyECKey),
    "RS256": ("RSA", CryptographyRSAKey),
}
# Times are checked here against the hub's own clock (`now=`), not python-jose's, so that every
# check uses one clock and tests are deterministic. (python-jose turns `require_exp` into a
# check against its own clock, so presence of exp and iat is checked by us as well.)
_OPTIONS = {
    "verify_exp": False,
    "verify_iat": False,
    "verify_nbf": False,
    "require_sub": True,
    "require_aud": True,
    "require_iss": True,
}
_password_hasher = PasswordHasher()
# Verifying against this when a username is unknown keeps the timing of both paths alike.
_DUMMY_HASH = _password_hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _password_hasher.hash(password)


def verification_key(jwk: dict[str, Any], alg: str) -> Any:
    """Build a python-jose key on the cryptography backend, or raise Unauthenticated."""
    if alg not in _KEY_CLASSES:
        raise Unauthenticated(f"algorithm not accepted: {alg}")
    kty, key_class = _KEY_CLASSES[alg]
    if jwk.get("kty") != kty:
        raise Unauthenticated("key type does not match the algorithm")
    if jwk.get("alg") not in (None, alg):
        raise Unauthenticated("key is registered for another algorithm")
    public = {k: v for k, v in jwk.items() if k not in ("d", "p", "q", "dp", "dq", "qi")}
    try:
        return key_class(public, alg)
    except Exception as exc:
        raise Unauthenticated("registered key is unusable") from exc


@functools.lru_cache(maxsize=16)
def _own_token_key(jwk: tuple[tuple[str, str], ...]) -> Any:
    # The key object for one of the keyring's public signing keys, built once: every request
    # needs it. Whether the keyring still holds the key is asked per request, not cached.
    return verification_key(dict(jwk), "ES256")


def _unverified(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if len(assertion) > MAX_TOKEN_CHARS:
        raise Unauthenticated(f"client assertion is longer than {MAX_TOKEN_CHARS} characters")
    try:
        return jwt.get_unverified_header(assertion), jwt.get_unverified_claims(assertion)
    except JWTError as exc:
        raise Unauthenticated("client assertion is not a JWT") from exc


def verify_client_assertion(
    *, session: Session, settings: Settings, assertion: str, now: datetime
) -> ApiClient:
    """Check an RFC 7523 client assertion and record its `jti`.

    Raises Unauthenticated for an unknown client, a bad signature, audience or issuer, a missing
    or too long lifetime, or a replayed `jti`.
    """
    header, claims = _unverified(assertion)
    alg = header.get("alg")
    client_id = claims.get("iss")
    if not isinstance(alg, str) or alg not in ASSERTION_ALGORITHMS:
        raise Unauthenticated("client assertion algorithm must be ES256 or RS256")
    if not isinstance(client_id, str) or not client_id:
        raise Unauthenticated("client assertion has no issuer")
    client = session.get(ApiClient, client_id)
    if client is None or not client.active:
        raise Unauthenticated("unknown client")
    kid = header.get("kid")
    candidates = [
        k
        for k in client.jwks.get("keys", [])
        if isinstance(k, dict) and (kid is None or k.get("kid") == kid)
    ]
    if not candidates:
        raise Unauthenticated("no registered key matches the assertion's kid")
    verified: dict[str, Any] | None = None
    for jwk in candidates:
        try:
            verified = jwt.decode(
                assertion,
                verification_key(jwk, alg),
                algorithms=[alg],
                audience=settings.token_endpoint,
                issuer=client_id,
                subject=client_id,
                options=_OPTIONS | {"require_jti": True},
            )
            break
        except Unauthenticated:
            continue
        except JWTError as exc:
            raise Unauthenticated(f"client assertion rejected: {exc}") from exc
    if verified is None:
        raise Unauthenticated("client assertion signature is not valid")
    _check_lifetime(verified, settings=settings, now=now)
    _remember_jti(session=session, client_id=client_id, claims=verified)
    return client


def _check_lifetime(claims: dict[str, Any], *, settings: Settings, now: datetime) -> None:
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int) or not isinstance(iat, int):
        raise Unauthenticated("client assertion exp and iat must be integers")
    limit = settings.assertion_max_lifetime_seconds
    if exp - iat > limit or exp - int(now.timestamp()) > limit:
        raise Unauthenticated(f"client assertion lives longer than {limit} seconds")
    if exp <= int(now.timestamp()):
        raise Unauthenticated("client assertion has expired")
    _check_not_before(claims, now=now, what="client assertion")


def _check_not_before(claims: dict[str, Any], *, now: datetime, what: str) -> None:
    """Refuse a token dated in the future: its `iat` or `nbf` is after now (plus skew)."""
    latest = int(now.timestamp()) + CLOCK_SKEW_SECONDS
    for name in ("iat", "nbf"):
        value = claims.get(name)
        if value is None and name == "nbf":
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise Unauthenticated(f"{what} {name} must be an integer")
        if value > latest:
            raise Unauthenticated(f"{what} is not valid yet")


def _remember_jti(*, session: Session, client_id: str, claims: dict[str, Any]) -> None:
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 200:
        raise Unauthenticated("client assertion jti is missing or too long")
    expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
    try:
        with session.begin_nested():
            session.add(UsedAssertion(client_id=client_id, jti=jti, expires_at=expires_at))
    except IntegrityError as exc:
        raise Unauthenticated("client assertion has already been used") from exc


def agency_panels(*, session: Session, agency_id: str) -> tuple[str, ...]:
    rows = session.exec(
        select(PanelMembership.panel_id).where(PanelMembership.agency_id == agency_id)
    ).all()
    return tuple(sorted(rows))


def authenticate_user(*, session: Session, username: str, password: str) -> User:
    """Check a person's password; raises Unauthenticated without saying which part was wrong."""
    user = session.get(User, username)
    stored = user.password_hash if user is not None and user.active else _DUMMY_HASH
    try:
        _password_hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError) as exc:
        raise Unauthenticated("username or password is wrong") from exc
    if user is None or not user.active:
        raise Unauthenticated("username or password is wrong")
    return user


def issue_access_token(
    *, keyring: KeyRing, settings: Settings, principal: Principal, now: datetime
) -> tuple[str, int]:
    """Sign a short-lived ES256 access token for `principal`; returns (token, lifetime)."""
    ttl = settings.access_token_ttl_seconds
    claims = {
        "iss": settings.public_url,
        "aud": ACCESS_TOKEN_AUDIENCE,
        "sub": principal.subject,
        "kind": principal.kind,
        "roles": list(principal.roles),
        "agency": principal.agency_id,
        "panel": principal.panel_id,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl)).timestamp()),
        "jti": str(uuid.uuid4()),
    }
    signing_kid, signing_pem = keyring.token_signing_key()
    token = jwt.encode(
        claims,
        signing_pem.decode(),
        algorithm="ES256",
        headers={"kid": signing_kid, "typ": ACCESS_TOKEN_TYPE},
    )
    return token, ttl


# An agency client's state and its agency's panels, in one round trip and as columns (no
# entities built): every request with an agency token runs this.
_CLIENT_AND_PANELS = (
    select_columns(col(ApiClient.agency_id), col(ApiClient.active), col(PanelMembership.panel_id))
    .outerjoin(PanelMembership, col(PanelMembership.agency_id) == col(ApiClient.agency_id))
    .where(col(ApiClient.client_id) == bindparam("client_id"))
)


def principal_from_access_token(
    *, session: Session, keyring: KeyRing, settings: Settings, token: str, now: datetime
) -> Principal:
    """Verify one of our own access tokens and read its client or user as they are now.

    The reads end the session's transaction (`reads_only`): the connection is back in the pool
    when this returns. Raises Unauthenticated if the token is expired or forged, or its client
    or user is no longer active.
    """
    if len(token) > MAX_TOKEN_CHARS:
        raise Unauthenticated("access token is invalid or expired")
    # Any signing key the keyring still holds verifies, found by the token's kid, so tokens
    # issued before a rotation stay valid until they expire.
    try:
        header = jwt.get_unverified_header(token)
    except JWTError as exc:
        raise Unauthenticated("access token is invalid or expired") from exc
    # Only access tokens are accepted here, not other JWTs the hub signs (consent receipts).
    if header.get("typ") != ACCESS_TOKEN_TYPE:
        raise Unauthenticated("access token is invalid or expired")
    kid = header.get("kid")
    try:
        jwk = keyring.token_verifying_jwk(kid) if isinstance(kid, str) else None
    except (KeysError, OSError) as exc:
        # An unknown kid makes the keyring re-read its store; if that store cannot be read the
        # token cannot be checked, so it is refused (fail closed), and operators hear of it.
        log.error("key store unreadable while checking an access token: %s", type(exc).__name__)
        raise Unauthenticated("access token is invalid or expired") from exc
    if jwk is None:
        raise Unauthenticated("access token is invalid or expired")
    key = _own_token_key(tuple(sorted(jwk.items())))
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=["ES256"],
            audience=ACCESS_TOKEN_AUDIENCE,
            issuer=settings.public_url,
            options=_OPTIONS,
        )
    except JWTError as exc:
        raise Unauthenticated("access token is invalid or expired") from exc
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp <= int(now.timestamp()):
        raise Unauthenticated("access token is invalid or expired")
    try:
        _check_not_before(claims, now=now, what="access token")
    except Unauthenticated as exc:
        raise Unauthenticated("access token is invalid or expired") from exc
    with reads_only(session):
        return _current_principal(session, kind=claims.get("kind"), subject=str(claims["sub"]))


def _current_principal(session: Session, *, kind: object, subject: str) -> Principal:
    if kind == "agency":
        # Read on every request, never remembered: a client deactivated or an agency taken
        # off a panel counts from the next request.
        rows = session.connection().execute(_CLIENT_AND_PANELS, {"client_id": subject}).all()
        if not rows or not rows[0].active:
            raise Unauthenticated("client is no longer active")
        panels = tuple(sorted(row.panel_id for row in rows if row.panel_id is not None))
        return _agency_principal(client_id=subject, agency_id=rows[0].agency_id, panels=panels)
    if kind == "user":
        user = session.get(User, subject)
        if user is None or not user.active:
            raise Unauthenticated("user is no longer active")
        return principal_for_user(user)
    raise Unauthenticated("access token is of an unknown kind")


def principal_for_client(*, session: Session, client: ApiClient) -> Principal:
    return _agency_principal(
        client_id=client.client_id,
        agency_id=client.agency_id,
        panels=agency_panels(session=session, agency_id=client.agency_id),
    )


def _agency_principal(*, client_id: str, agency_id: str, panels: tuple[str, ...]) -> Principal:
    return Principal(
        kind="agency",
        subject=client_id,
        roles=(AGENCY_SYSTEM,),
        agency_id=agency_id,
        panels=panels,
    )


def principal_for_user(user: User) -> Principal:
    return Principal(
        kind="user",
        subject=user.username,
        roles=(user.role,),
        panel_id=user.panel_id,
        panels=(user.panel_id,) if user.panel_id else (),
    )


def exchange_client_assertion(
    *, session: Session, keyring: KeyRing, settings: Settings, form: dict[str, str], now: datetime
) -> TokenPublic:
    """RFC 7523 section 2.2 client authentication, then an access token for the agency.

    Raises BadRequest for a malformed form, Unauthenticated for a bad assertion.
    """
    if form.get("grant_type") != "client_credentials":
        raise BadRequest("grant_type must be client_credentials")
    if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
        raise BadRequest(f"client_assertion_type must be {CLIENT_ASSERTION_TYPE}")
    assertion = form.get("client_assertion", "")
    if not assertion:
        raise BadRequest("client_assertion is required")
    client = verify_client_assertion(
        session=session, settings=settings, assertion=assertion, now=now
    )
    principal = principal_for_client(session=session, client=client)
    token, ttl = issue_access_token(
        keyring=keyring, settings=settings, principal=principal, now=now
    )
    # The jti is now spent; keep that even though nothing else was written.
    session.commit()
    return TokenPublic(access_token=token, expires_in=ttl)


def login(
    *,
    session: Session,
    keyring: KeyRing,
    settings: Settings,
    username: str,
    password: str,
    now: datetime,
) -> TokenPublic:
    """Raises Unauthenticated without saying whether the user or the password was wrong, or
    that the account is locked after repeated failures (the web sign-in's lockout)."""
    # Imported here: sign_in_limits builds on this module's password check.
    from hub.services import sign_in_limits

    user = sign_in_limits.check_password(
        session=session,
        keyring=keyring,
        settings=settings,
        username=username,
        password=password,
        now=now,
    )
    session.commit()
    token, ttl = issue_access_token(
        keyring=keyring, settings=settings, principal=principal_for_user(user), now=now
    )
    return TokenPublic(access_token=token, expires_in=ttl)
