"""The operator's commands: init and demo are safe twice, secrets stay private, a wrong master
key stops everything and writes nothing."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from hub.cli import app

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    data_dir = tmp_path / "var"
    monkeypatch.setenv("HUB_DATA_DIR", str(data_dir))
    monkeypatch.setenv("HUB_DATABASE_URL", database_url)
    monkeypatch.setenv("HUB_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    return data_dir


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_is_safe_to_run_twice(env: Path) -> None:
    first = runner.invoke(app, ["init"])
    keystore = (env / "keystore.json").read_bytes()
    second = runner.invoke(app, ["init"])

    assert first.exit_code == second.exit_code == 0, first.output + second.output
    assert (env / "keystore.json").read_bytes() == keystore
    assert mode(env) == 0o700
    assert mode(env / "keystore.json") == 0o600


def test_demo_twice_keeps_credentials_and_writes_them_privately(env: Path) -> None:
    assert runner.invoke(app, ["demo"]).exit_code == 0
    clients = json.loads((env / "demo/clients.json").read_text())
    users = json.loads((env / "demo/users.json").read_text())
    result = runner.invoke(app, ["demo"])

    assert result.exit_code == 0, result.output
    assert json.loads((env / "demo/clients.json").read_text()) == clients
    assert json.loads((env / "demo/users.json").read_text()) == users
    assert mode(env / "demo/clients.json") == mode(env / "demo/users.json") == 0o600
    assert sorted(c["agency"] for c in clients) == [
        "brightpath-youth",
        "northtown-academy",
        "northtown-childrens-services",
        "northtown-police",
    ]
    assert set(clients[0]) == {"agency", "client_id", "kid", "alg", "private_key_pem"}
    assert {u["role"] for u in users} == {"coordinator", "dpo"}
    assert set(users[0]) == {"username", "password", "role", "panel"}


def test_wrong_master_key_stops_with_a_clear_message_and_writes_nothing(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runner.invoke(app, ["demo"]).exit_code == 0
    before = {p: p.read_bytes() for p in env.rglob("*") if p.is_file() and p.suffix != ".db"}
    monkeypatch.setenv("HUB_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())

    for command in (["init"], ["demo"], ["audit", "verify"], ["keys", "list"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1, command
        assert "master key" in result.output

    after = {p: p.read_bytes() for p in env.rglob("*") if p.is_file() and p.suffix != ".db"}
    assert after == before


def test_identities_and_local_ids_are_not_stored_in_clear(env: Path, database_url: str) -> None:
    assert runner.invoke(app, ["demo"]).exit_code == 0
    engine = create_engine(database_url)
    dumped = []
    with engine.connect() as conn:
        for table in ("subject", "subject_local_id", "audit_entry"):
            dumped += [str(row) for row in conn.execute(text(f"SELECT * FROM {table}"))]
    engine.dispose()

    joined = "\n".join(dumped)
    assert dumped
    for secret in ("Alex", "Example", "2011-03-14", "NA-2231", "NTP-1042", "CS-88-301"):
        assert secret not in joined


def test_every_command_has_help() -> None:
    for command in (
        [],
        ["init"],
        ["demo"],
        ["serve"],
        ["client-assertion"],
        ["panel", "add"],
        ["agency", "add"],
        ["client", "add"],
        ["user", "add"],
        ["audit", "verify"],
        ["keys", "list"],
    ):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0, command
        assert "Usage" in result.output
