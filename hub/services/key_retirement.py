"""Retiring a key version: the checks that keep a retirement from losing data or breaking
what is still valid, before `keys.KeyRing.retire` stamps the key.

- data-encryption: only once nothing is wrapped or encrypted under the key (finish its
  rotation first), since a retired key opens nothing;
- token-signing: only once no access token it signed can still be valid, i.e. its successor
  has been writing for longer than the longest token lifetime plus the time a serving hub
  takes to notice a rotation; from then on it leaves /.well-known/jwks.json;
- blind-index: only once no subject is indexed under the key (finish its rotation first),
  since a retired key finds nothing and those people would become second subjects;
- checkpoint-signing: never, since its public key verifies the audit log's history;
- pseudonym-root, bundle-signing: at any time once rotated; old pseudonyms of the version stop
  resolving, and bundles it signed stop verifying.

The current key of a purpose is never retired (the keyring refuses).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel import Session

from hub.errors import Conflict
from hub.services import key_rotation, reindex
from keys import KeyRing

# How long a serving hub may keep signing with a key after it was rotated out: its keyring
# re-reads the keystore at most every few seconds; a minute is ample.
ROTATION_NOTICE = timedelta(minutes=1)
NEVER_RETIRED = frozenset({"checkpoint-signing"})
BLIND_INDEX = "blind-index"


@dataclass(frozen=True)
class _Version:
    purpose: str
    kid: str
    version: str
    created_at: datetime
    state: str


def _versions(keyring: KeyRing, purpose: str) -> list[_Version]:
    return [
        _Version(
            purpose=purpose,
            kid=str(entry["kid"]),
            version=str(entry["version"]),
            created_at=_parse(str(entry["created_at"])),
            state=str(entry["state"]),
        )
        for entry in keyring.key_ids()
        if entry["purpose"] == purpose
    ]


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _number(version: str) -> int:
    try:
        return int(version.removeprefix("v"))
    except ValueError:
        return 0


def successor_created_at(keyring: KeyRing, *, purpose: str, version: str) -> datetime | None:
    """When the key that replaced `version` of `purpose` was made (the next version up), or
    None if no key has replaced it yet."""
    later = [v for v in _versions(keyring, purpose) if _number(v.version) > _number(version)]
    if not later:
        return None
    return min(later, key=lambda v: _number(v.version)).created_at


def check_retirable(
    *,
    session: Session,
    keyring: KeyRing,
    purpose: str,
    version: str,
    token_lifetime: timedelta,
    now: datetime,
) -> None:
    """Raises Conflict naming the reason if retiring `version` of `purpose` now would lose data
    or break something still valid (see the module docstring); returns None if it is safe."""
    if purpose in NEVER_RETIRED:
        raise Conflict(f"{purpose} keys are never retired: they verify the audit log's history")
    found = [v for v in _versions(keyring, purpose) if v.version == version]
    if not found:
        raise Conflict(f"no {purpose!r} key of version {version!r}")
    key = found[0]
    if key.state == "current":
        raise Conflict(
            f"{purpose!r} key {version} is the current key; rotate first, then retire it"
        )
    if purpose == key_rotation.DATA_ENCRYPTION:
        left = key_rotation.still_under(session=session, kid=key.kid)
        if left:
            raise Conflict(
                f"{left} stored items are still under {key.kid}; run "
                "`hub keys rotate data-encryption` to finish re-encrypting them first"
            )
    if purpose == BLIND_INDEX:
        indexed = reindex.still_under(session=session, version=version)
        if indexed:
            raise Conflict(
                f"{indexed} subjects are still indexed under {key.kid}; run "
                "`hub keys rotate blind-index` to finish re-indexing them first"
            )
    if purpose == "token-signing":
        replaced = successor_created_at(keyring, purpose=purpose, version=version)
        assert replaced is not None  # Not current, so a later version exists.
        safe_from = replaced + token_lifetime + ROTATION_NOTICE
        if now < safe_from:
            raise Conflict(
                f"tokens signed by {key.kid} may still be valid until "
                f"{safe_from.isoformat(timespec='seconds')}; retire it after that"
            )


def retire(
    *,
    session: Session,
    keyring: KeyRing,
    path: Path,
    master_key: bytes,
    purpose: str,
    version: str,
    token_lifetime: timedelta,
    now: datetime,
) -> KeyRing:
    """Check (`check_retirable`), then retire the key; returns the keyring as now stored.

    Raises Conflict as `check_retirable` does, and keys.KeysError if the keystore cannot be
    read or written.
    """
    check_retirable(
        session=session,
        keyring=keyring,
        purpose=purpose,
        version=version,
        token_lifetime=token_lifetime,
        now=now,
    )
    try:
        return KeyRing.retire(
            path, master_key=master_key, purpose=purpose, version=version, now=now
        )
    except ValueError as exc:  # Raced with another retirement or rotation.
        raise Conflict(str(exc)) from exc
