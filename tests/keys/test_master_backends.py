"""Master key backends: a passphrase stretched with scrypt, the environment, a key file."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from keys import (
    EnvMasterKey,
    KeyFileMasterKey,
    KeyRing,
    MasterKeyError,
    PassphraseMasterKey,
    master_key_backend,
)

PASSPHRASE = "correct horse battery staple"


def test_a_passphrase_gives_the_same_key_with_its_salt(tmp_path: Path) -> None:
    salt = tmp_path / "master.salt"
    first = PassphraseMasterKey(PASSPHRASE, salt_file=salt).load(create=True)
    assert len(first) == 32
    assert os.stat(salt).st_mode & 0o777 == 0o600
    assert PassphraseMasterKey(PASSPHRASE, salt_file=salt).load(create=False) == first
    other = PassphraseMasterKey(PASSPHRASE + "!", salt_file=salt).load(create=False)
    assert other != first
    ring = KeyRing.create(tmp_path / "keystore.json", master_key=first)
    with pytest.raises(MasterKeyError, match="does not open keystore"):
        KeyRing.open(tmp_path / "keystore.json", master_key=other)
    assert ring.data_key_kid


def test_a_passphrase_without_its_salt_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MasterKeyError, match="no salt file"):
        PassphraseMasterKey(PASSPHRASE, salt_file=tmp_path / "none").load(create=False)


def test_a_short_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MasterKeyError, match="at least 12 characters"):
        PassphraseMasterKey("short", salt_file=tmp_path / "s").load(create=True)
    assert not (tmp_path / "s").exists()


def test_an_exposed_salt_file_is_refused(tmp_path: Path) -> None:
    salt = tmp_path / "master.salt"
    PassphraseMasterKey(PASSPHRASE, salt_file=salt).load(create=True)
    salt.chmod(0o644)
    with pytest.raises(MasterKeyError, match="readable only by its owner"):
        PassphraseMasterKey(PASSPHRASE, salt_file=salt).load(create=False)


def test_the_backend_follows_the_settings(tmp_path: Path) -> None:
    key = base64.b64encode(bytes(32)).decode()
    paths = {"key_file": tmp_path / "master.key", "salt_file": tmp_path / "master.salt"}
    env = master_key_backend(env_value=key, passphrase=None, **paths)
    assert isinstance(env, EnvMasterKey) and env.load(create=False) == bytes(32)
    assert "AAAA" not in repr(env)
    assert isinstance(
        master_key_backend(env_value=None, passphrase=PASSPHRASE, **paths), PassphraseMasterKey
    )
    assert PASSPHRASE not in repr(
        master_key_backend(env_value=None, passphrase=PASSPHRASE, **paths)
    )
    assert isinstance(
        master_key_backend(env_value=None, passphrase=None, **paths), KeyFileMasterKey
    )
    with pytest.raises(MasterKeyError, match="not both"):
        master_key_backend(env_value=key, passphrase=PASSPHRASE, **paths)
