from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from keys import MasterKeyError, load_master_key

KEY = bytes(range(100, 132))
ENV_ERROR = "HUB_MASTER_KEY must be base64 of 32 bytes"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _write_key_file(path: Path, content: bytes, mode: int) -> None:
    path.write_bytes(content)
    os.chmod(path, mode)


@pytest.mark.parametrize(
    "env_value",
    [
        base64.b64encode(KEY).decode(),
        base64.b64encode(KEY).decode().rstrip("="),
        base64.urlsafe_b64encode(KEY).decode(),
        base64.urlsafe_b64encode(KEY).decode().rstrip("="),
        base64.b64encode(KEY).decode() + "\n",
    ],
    ids=["standard", "standard-unpadded", "urlsafe", "urlsafe-unpadded", "trailing-newline"],
)
def test_env_value_is_decoded(tmp_path: Path, env_value: str) -> None:
    assert load_master_key(env_value=env_value, key_file=tmp_path / "none") == KEY


def test_env_value_wins_over_file_and_creates_nothing(tmp_path: Path) -> None:
    key_file = tmp_path / "dir" / "master.key"
    env_value = base64.b64encode(KEY).decode()
    assert load_master_key(env_value=env_value, key_file=key_file, create=True) == KEY
    assert not key_file.parent.exists()


@pytest.mark.parametrize(
    "env_value",
    [
        base64.b64encode(bytes(31)).decode(),
        base64.b64encode(bytes(33)).decode(),
        "not base64 at all!",
        "@@@@",
        "",
        "=" * 4,
    ],
    ids=["31-bytes", "33-bytes", "prose", "symbols", "empty", "only-padding"],
)
def test_bad_env_value_is_refused(tmp_path: Path, env_value: str) -> None:
    with pytest.raises(MasterKeyError, match=ENV_ERROR) as info:
        load_master_key(env_value=env_value, key_file=tmp_path / "none")
    if env_value:
        assert env_value not in str(info.value)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_key_file_owner_only_is_read(tmp_path: Path, mode: int) -> None:
    key_file = tmp_path / "master.key"
    _write_key_file(key_file, base64.b64encode(KEY) + b"\n", mode)
    assert load_master_key(env_value=None, key_file=key_file) == KEY


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o610])
def test_key_file_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    key_file = tmp_path / "master.key"
    _write_key_file(key_file, base64.b64encode(KEY), mode)
    with pytest.raises(MasterKeyError, match=r"readable only by its owner \(chmod 600\)"):
        load_master_key(env_value=None, key_file=key_file, create=True)
    # Refusing must not "repair" the file by replacing it.
    assert key_file.read_bytes() == base64.b64encode(KEY)


@pytest.mark.parametrize(
    "content",
    [base64.b64encode(bytes(16)), b"hello", b"", b"\xff\xfe", b"A" * 5000],
    ids=["16-bytes", "prose", "empty", "not-ascii", "huge"],
)
def test_key_file_with_bad_content_is_refused(tmp_path: Path, content: bytes) -> None:
    key_file = tmp_path / "master.key"
    _write_key_file(key_file, content, 0o600)
    with pytest.raises(MasterKeyError, match="must contain base64 of 32 bytes"):
        load_master_key(env_value=None, key_file=key_file)


def test_key_file_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    key_dir = tmp_path / "master.key"
    key_dir.mkdir(mode=0o700)
    with pytest.raises(MasterKeyError, match="is not a regular file"):
        load_master_key(env_value=None, key_file=key_dir)


def test_missing_key_file_without_create_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "dir" / "master.key"
    with pytest.raises(MasterKeyError, match="no master key: set HUB_MASTER_KEY or create"):
        load_master_key(env_value=None, key_file=key_file)
    assert not key_file.parent.exists()


def test_create_writes_an_owner_only_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "secrets" / "master.key"
    key = load_master_key(env_value=None, key_file=key_file, create=True)
    assert len(key) == 32
    assert _mode(key_file) == 0o600
    assert _mode(key_file.parent) == 0o700
    assert base64.b64decode(key_file.read_bytes().strip(), validate=True) == key
    # No temporary file is left behind next to the key.
    assert sorted(p.name for p in key_file.parent.iterdir()) == ["master.key"]
    # Loading again, with or without create, returns the same key rather than a new one.
    assert load_master_key(env_value=None, key_file=key_file) == key
    assert load_master_key(env_value=None, key_file=key_file, create=True) == key


def test_create_gives_a_different_key_each_time(tmp_path: Path) -> None:
    first = load_master_key(env_value=None, key_file=tmp_path / "a.key", create=True)
    second = load_master_key(env_value=None, key_file=tmp_path / "b.key", create=True)
    assert first != second


def test_key_file_under_a_non_directory_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(MasterKeyError, match=r"cannot open master key file .*Not a directory"):
        load_master_key(env_value=None, key_file=blocker / "master.key", create=True)


def test_create_reports_a_failed_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "link", refuse)
    key_file = tmp_path / "master.key"
    with pytest.raises(MasterKeyError, match=r"cannot write master key file .*Permission denied"):
        load_master_key(env_value=None, key_file=key_file, create=True)
    assert list(tmp_path.iterdir()) == []
