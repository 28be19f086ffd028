"""Lockout for people's passwords, shared by the web sign-in and the API's `POST /v1/login`.

One account is locked after `sign_in_max_failures` failed attempts within
`sign_in_lockout_seconds`, whichever door the guesses came through, so a script cannot go on
guessing through the API once the browser form has locked.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, delete, func, select

from hub.config import Settings
from hub.errors import Unauthenticated
from hub.services.auth import authenticate_user
from hub.storage.models import SignInFailure, User
from keys import KeyRing

__all__ = ["WRONG_CREDENTIALS", "check_password"]

# The one message for a wrong name, a wrong password and a locked account alike, so an answer
# never tells whether an account exists or is locked.
WRONG_CREDENTIALS = "username or password is wrong"


def _accounts(keyring: KeyRing, username: str) -> list[str]:
    # A keyed hash of whatever was typed: a password typed into the name field is never kept.
    # Under every blind-index key held, newest first, so a key rotation does not wipe the count.
    return list(keyring.blind_indexes(kind="web_sign_in_account", value=username).values())


def _recent_failures(*, session: Session, accounts: list[str], since: datetime) -> int:
    found = session.exec(
        select(func.count())
        .select_from(SignInFailure)
        .where(col(SignInFailure.account_hash).in_(accounts), col(SignInFailure.at) > since)
    ).one()
    return int(found)


def check_password(
    *,
    session: Session,
    keyring: KeyRing,
    settings: Settings,
    username: str,
    password: str,
    now: datetime,
) -> User:
    """The person, if the password is right and the account is not locked.

    The caller commits after a success (which forgets the account's failures). Raises
    Unauthenticated with one message for a wrong name or password and for a locked account
    (attempts made while locked count too, so the lock lasts until the window has been quiet).
    """
    accounts = _accounts(keyring, username)
    window_start = now - timedelta(seconds=settings.sign_in_lockout_seconds)
    # The attempt is recorded as a failure before the password is checked, and forgotten only
    # if it succeeds: attempts made in parallel all count, so a burst cannot slip more than
    # the allowed number of guesses past the lockout.
    session.exec(
        delete(SignInFailure).where(
            col(SignInFailure.account_hash).in_(accounts), col(SignInFailure.at) <= window_start
        )
    )
    session.add(SignInFailure(account_hash=accounts[0], at=now))
    session.commit()
    if (
        _recent_failures(session=session, accounts=accounts, since=window_start)
        > settings.sign_in_max_failures
    ):
        raise Unauthenticated(WRONG_CREDENTIALS)
    user = authenticate_user(session=session, username=username, password=password)
    session.exec(delete(SignInFailure).where(col(SignInFailure.account_hash).in_(accounts)))
    return user
