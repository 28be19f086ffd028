"""People's browser sessions: sign-in with lockout, resuming a session, idle timeout, sign-out,
and the CSRF tokens tied to a session.

The cookie holds a random session id; the database keeps only its SHA-256, so a copy of the
database cannot be turned into a signed-in browser. Sign-in and sign-out are written to the
audit log in the same transaction as the session row.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from hub.config import Settings
from hub.services import audit, sign_in_limits
from hub.storage.models import User, WebSession
from keys import KeyRing

# Writing last_seen_at on every page view costs a write per request; this often (or a quarter
# of the idle timeout, if that is shorter) keeps the timeout accurate enough.
_TOUCH_EVERY = timedelta(seconds=15)
_CSRF_LABEL = b"hub web csrf v1"
_SIGN_IN_CSRF_LABEL = b"hub web sign-in csrf v1"


class SessionEnded(Exception):
    """No usable session: none, signed out, idle too long, too old, or the person disabled."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ActiveSession:
    session_id: str  # the cookie's value, never stored
    user: User


def cookie_name(settings: Settings) -> str:
    # The __Host- prefix makes the browser refuse the cookie unless it is Secure, host-only
    # and for path /; it cannot be used over plain HTTP, so development drops it.
    return "__Host-hub_session" if settings.session_cookie_secure else "hub_session"


def sign_in_cookie_name(settings: Settings) -> str:
    return "__Host-hub_sign_in" if settings.session_cookie_secure else "hub_sign_in"


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _mac(secret: str, label: bytes) -> str:
    return hmac.new(secret.encode(), label, hashlib.sha256).hexdigest()


def csrf_token(session_id: str) -> str:
    """The session's form token: derived from the session id, so it needs no storage and
    reveals nothing about the id itself."""
    return _mac(session_id, _CSRF_LABEL)


def new_sign_in_secret() -> str:
    """The random value of the sign-in page's own cookie (before anyone is signed in)."""
    return secrets.token_urlsafe(32)


def sign_in_csrf_token(secret: str) -> str:
    return _mac(secret, _SIGN_IN_CSRF_LABEL)


def tokens_match(expected: str, given: str | None) -> bool:
    # Constant time, so the token cannot be learnt one character at a time.
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def sign_in(
    *,
    session: Session,
    keyring: KeyRing,
    settings: Settings,
    username: str,
    password: str,
    now: datetime,
) -> ActiveSession:
    """Check the password and open a session; audited.

    Raises Unauthenticated with one message for a wrong name or password and for an account
    locked after `sign_in_max_failures` failures within `sign_in_lockout_seconds` (attempts
    made while locked count too, so the lock lasts until the window has been quiet).
    Raises AuditUnavailable if the sign-in cannot be logged (then nobody is signed in).
    """
    user = sign_in_limits.check_password(
        session=session,
        keyring=keyring,
        settings=settings,
        username=username,
        password=password,
        now=now,
    )
    session_id = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            id_hash=_hash(session_id), username=user.username, created_at=now, last_seen_at=now
        )
    )
    audit.append(
        session=session,
        kind="web_signed_in",
        body={"actor": f"user:{user.username}", "role": user.role},
        now=now,
    )
    audit.commit(session=session)
    return ActiveSession(session_id=session_id, user=user)


def _end(*, session: Session, row: WebSession, reason: str, now: datetime) -> None:
    row.ended_at = now
    session.add(row)
    audit.append(
        session=session,
        kind="web_signed_out",
        body={"actor": f"user:{row.username}", "reason": reason},
        now=now,
    )
    audit.commit(session=session)


def resume(
    *, session: Session, settings: Settings, session_id: str, now: datetime
) -> ActiveSession:
    """The session behind a cookie, marked as used now.

    Raises SessionEnded ("signed_out", "idle", "expired") when there is none to resume; a
    session found idle or too old is ended and the end audited.
    """
    row = session.get(WebSession, _hash(session_id))
    if row is None or row.ended_at is not None:
        raise SessionEnded("signed_out")
    if now - row.last_seen_at > timedelta(seconds=settings.web_idle_timeout_seconds):
        _end(session=session, row=row, reason="idle", now=now)
        raise SessionEnded("idle")
    if now - row.created_at > timedelta(seconds=settings.web_session_max_seconds):
        _end(session=session, row=row, reason="expired", now=now)
        raise SessionEnded("expired")
    user = session.get(User, row.username)
    if user is None or not user.active:
        _end(session=session, row=row, reason="account_disabled", now=now)
        raise SessionEnded("signed_out")
    touch_every = min(_TOUCH_EVERY, timedelta(seconds=settings.web_idle_timeout_seconds / 4))
    if now - row.last_seen_at >= touch_every:
        row.last_seen_at = now
        session.add(row)
        session.commit()
    return ActiveSession(session_id=session_id, user=user)


def sign_out(*, session: Session, session_id: str, now: datetime) -> None:
    """End the session; audited. Signing out of an ended session changes nothing."""
    row = session.get(WebSession, _hash(session_id))
    if row is None or row.ended_at is not None:
        return
    _end(session=session, row=row, reason="signed_out", now=now)
