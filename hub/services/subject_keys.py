"""Per-subject data keys: envelope encryption of a subject's values, and crypto-shredding.

Each subject has its own AES-256-GCM data key, stored only wrapped by the keyring's
key-encryption key (the data-encryption key) in `subject_key`. Identity attributes, local
identifiers and free-text case fields are sealed under it with associated data naming the
table, row and column, so a ciphertext copied to another row or column fails to open.
Deleting the wrapped key (`shred`) makes every copy of those values unreadable, including
copies in backups, even to someone holding the keystore and the master key.

Values written before per-subject keys existed are tokens of `KeyRing.encrypt` ("v1.<kid>.")
under their old associated data; they still open, and `hub keys rotate data-encryption`
re-seals them under the subject's key.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlmodel import Session

from hub.errors import SubjectErased
from hub.storage.models import Subject, SubjectKey
from hub.storage.types import utcnow
from keys import DataKey, KeyRing

# Values are sealed under the subject's key with this associated data.
_AD_FORMAT = "hub/v2/{table}/{row}/{column}"
# What the same columns were bound to when sealed directly under the keyring.
LEGACY_AD = {
    ("subject", "identity_ciphertext"): "subject/{row}/identity",
    ("subject_local_id", "local_id_ciphertext"): "subject_local_id/{row}/local_id",
    ("case", "summary_ciphertext"): "case/{row}/summary",
}
# Where `keys_remembered` keeps unwrapped keys, in the session's scratch space.
_MEMO = "hub.subject_keys.remembered"
# Written over a value sealed under the keyring (not a subject key) when its subject is shredded.
SHREDDED = "shredded"


def associated_data(*, table: str, row: str, column: str) -> bytes:
    """What binds a value to its place: a value moved to another table, row or column fails."""
    return _AD_FORMAT.format(table=table, row=row, column=column).encode()


@contextmanager
def keys_remembered(session: Session) -> Iterator[None]:
    """Within the block, each subject's data key is unwrapped once and then reused.

    For one request's work (a disclosure opens the identity and the local identifiers): the
    keys are forgotten when the block ends, so none outlives the request in memory.
    """
    if _MEMO in session.info:
        yield
        return
    memo: dict[str, DataKey | str] = {}
    session.info[_MEMO] = memo
    try:
        yield
    finally:
        del session.info[_MEMO]
        memo.clear()


def remember_wrapped(*, session: Session, subject_id: str, wrapped_key: str) -> None:
    """Within `keys_remembered`, take the subject's wrapped key as already read (a caller that
    read it with other columns, in one round trip); it is unwrapped only when first needed.

    Outside the block this does nothing: the key is then read when needed, as usual.
    """
    memo: dict[str, DataKey | str] | None = session.info.get(_MEMO)
    if memo is not None and subject_id not in memo:
        memo[subject_id] = wrapped_key


def _wrap_ad(subject_id: str) -> bytes:
    return associated_data(table="subject_key", row=subject_id, column="wrapped_key")


def data_key(
    *, session: Session, keyring: KeyRing, subject_id: str, create: bool = False
) -> DataKey:
    """The subject's data key, made and stored (wrapped) first if `create` and there is none.

    Raises SubjectErased if the subject has no key and `create` is false (it was shredded, or
    never had a key); keys.DecryptionError if the wrapped key does not open (altered row).
    """
    memo: dict[str, DataKey | str] | None = session.info.get(_MEMO)
    held = memo.get(subject_id) if memo is not None else None
    if isinstance(held, DataKey):
        return held
    if held is not None:  # read already, still wrapped (`remember_wrapped`)
        key = keyring.unwrap_data_key(held, associated_data=_wrap_ad(subject_id))
    else:
        key = _load_or_create(
            session=session, keyring=keyring, subject_id=subject_id, create=create
        )
    if memo is not None:
        memo[subject_id] = key
    return key


def _load_or_create(
    *, session: Session, keyring: KeyRing, subject_id: str, create: bool
) -> DataKey:
    row = session.get(SubjectKey, subject_id)
    if row is None:
        if not create:
            raise SubjectErased("subject not found: its data key no longer exists")
        key = keyring.new_data_key()
        row = SubjectKey(
            subject_id=subject_id,
            wrapped_key=keyring.wrap_data_key(key, associated_data=_wrap_ad(subject_id)),
            kek_kid=keyring.data_key_kid,
            created_at=utcnow(),
        )
        session.add(row)
        session.flush()
        return key
    return keyring.unwrap_data_key(row.wrapped_key, associated_data=_wrap_ad(subject_id))


def rewrap(*, keyring: KeyRing, row: SubjectKey) -> None:
    """Wrap the row's key again under the current key-encryption key (for rotation).

    Raises keys.DecryptionError if the wrapped key does not open.
    """
    key = keyring.unwrap_data_key(row.wrapped_key, associated_data=_wrap_ad(row.subject_id))
    row.wrapped_key = keyring.wrap_data_key(key, associated_data=_wrap_ad(row.subject_id))
    row.kek_kid = keyring.data_key_kid


def seal(
    *,
    session: Session,
    keyring: KeyRing,
    subject_id: str,
    table: str,
    row: str,
    column: str,
    plaintext: bytes,
) -> str:
    """Encrypt a value of the subject under its data key (made now if it has none).

    Raises SubjectErased if the subject was shredded: nothing new is stored about them.
    """
    if session.get(SubjectKey, subject_id) is None and is_shredded(
        session=session, subject_id=subject_id
    ):
        raise SubjectErased("subject not found: its data key no longer exists")
    key = data_key(session=session, keyring=keyring, subject_id=subject_id, create=True)
    return key.encrypt(
        plaintext, associated_data=associated_data(table=table, row=row, column=column)
    )


def open_value(
    *,
    session: Session,
    keyring: KeyRing,
    subject_id: str,
    table: str,
    row: str,
    column: str,
    token: str,
) -> bytes:
    """Decrypt a value sealed by `seal`, or an older one sealed under the keyring itself.

    Raises SubjectErased if the subject was shredded, keys.DecryptionError if the value does
    not open (altered, or moved from another row or column).
    """
    if token == SHREDDED:
        raise SubjectErased("subject not found: its data key no longer exists")
    if KeyRing.token_kid(token) is not None:
        legacy = LEGACY_AD.get((table, column))
        ad = (
            legacy.format(row=row)
            if legacy
            else _AD_FORMAT.format(table=table, row=row, column=column)
        ).encode()
        return keyring.decrypt(token, associated_data=ad)
    key = data_key(session=session, keyring=keyring, subject_id=subject_id)
    return key.decrypt(token, associated_data=associated_data(table=table, row=row, column=column))


def is_shredded(*, session: Session, subject_id: str) -> bool:
    """Whether the subject's values were destroyed (its identity is the shredded marker)."""
    subject = session.get(Subject, subject_id)
    return subject is not None and subject.identity_ciphertext == SHREDDED
