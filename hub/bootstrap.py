"""Setting up and opening a hub's data directory: master key, keyring, database."""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlalchemy import Engine

from hub.config import Settings
from hub.storage.db import create_schema, make_engine
from keys import KeyRing, master_key_backend


@dataclass(frozen=True)
class Opened:
    keyring: KeyRing
    engine: Engine


def master_key(settings: Settings) -> bytes:
    """The existing master key. Raises keys.MasterKeyError if it is missing or malformed."""
    return _master_key(settings, create=False)


def _master_key(settings: Settings, *, create: bool) -> bytes:
    env_value = settings.master_key.get_secret_value() if settings.master_key else None
    passphrase = (
        settings.master_passphrase.get_secret_value() if settings.master_passphrase else None
    )
    backend = master_key_backend(
        env_value=env_value,
        passphrase=passphrase,
        key_file=settings.master_key_file,
        salt_file=settings.master_salt_file,
    )
    return backend.load(create=create)


def initialise(settings: Settings) -> Opened:
    """Create what is missing (data directory, master key file, keyring, tables); safe to
    run twice. Raises keys.MasterKeyError if an existing keyring does not open with the key."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)
    keyring = KeyRing.open_or_create(
        settings.keystore_path, master_key=_master_key(settings, create=True)
    )
    # Migrations may take long on a big database; they run without a statement timeout.
    engine = make_engine(settings.resolved_database_url, statement_timeout=0)
    create_schema(engine)
    return Opened(keyring=keyring, engine=engine)


# Pooled connections beyond one per handler thread: the audit writer, a timed checkpoint, the
# webhook sender, and one to spare.
POOL_SPARE = 4


def open_existing(settings: Settings) -> Opened:
    """Open an initialised hub without creating anything.

    Raises keys.MasterKeyError or keys.KeyStoreError when the keyring cannot be opened.
    """
    keyring = KeyRing.open(settings.keystore_path, master_key=_master_key(settings, create=False))
    engine = make_engine(
        settings.resolved_database_url,
        statement_timeout=settings.database_statement_timeout_seconds,
        # Every handler thread, the audit writer and the background senders keep a connection
        # of their own: connections beyond the pool are opened and closed per use, which on
        # PostgreSQL starts a server process each time.
        pool_size=settings.request_threads + POOL_SPARE,
        max_overflow=POOL_SPARE,
    )
    return Opened(keyring=keyring, engine=engine)
