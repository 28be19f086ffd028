"""The verifier is one file an agency can run alone: it imports nothing but the standard
library and `cryptography`, and its command line checks every object the hub hands out."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import hub.audit.verifier as verifier_module
from hub.audit.verifier import main
from tests.api.conftest import Hub

SOURCE = Path(verifier_module.__file__)


def _imported_roots(source: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative imports would tie the file to its package"
            roots.add((node.module or "").split(".")[0])
    return roots


def test_it_imports_only_the_standard_library_and_cryptography() -> None:
    outside = _imported_roots(SOURCE) - set(sys.stdlib_module_names) - {"__future__"}
    assert outside == {"cryptography"}


def _files(tmp_path: Path, hub: Hub, answers: list[dict[str, Any]]) -> dict[str, Path]:
    dpo = hub.user_headers("dpo")
    checkpoint = hub.client.get("/v1/audit/checkpoint", headers=dpo).text
    first = answers[0]["receipt"]
    size = int(checkpoint.split("\n")[1])
    files = {
        "key": hub.client.get("/v1/audit/key").text,
        "receipt": json.dumps(answers[1]),
        "checkpoint": checkpoint,
        "old": first["checkpoint"],
        "inclusion": json.dumps(
            hub.client.get(
                "/v1/audit/proofs/inclusion",
                params={"index": first["index"], "tree_size": size},
                headers=dpo,
            ).json()
        ),
        "consistency": json.dumps(
            hub.client.get(
                "/v1/audit/proofs/consistency",
                params={"first": int(first["checkpoint"].split("\n")[1]), "second": size},
                headers=dpo,
            ).json()
        ),
    }
    paths = {}
    for name, content in files.items():
        paths[name] = tmp_path / name
        paths[name].write_text(content)
    return paths


def test_a_copy_of_the_file_runs_alone(
    disclosed: tuple[Hub, list[dict[str, Any]]], tmp_path: Path
) -> None:
    hub, answers = disclosed
    paths = _files(tmp_path, hub, answers)
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(SOURCE, alone / "verifier.py")
    # The hub package is made unimportable: the copy must not need it.
    runner = (
        "import runpy, sys; sys.modules['hub'] = None; sys.argv = ['verifier.py', *sys.argv[1:]];"
        "runpy.run_path('verifier.py', run_name='__main__')"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            runner,
            "receipt",
            str(paths["receipt"]),
            "--key",
            f"@{paths['key']}",
        ],
        cwd=alone,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"receipt verifies: decision {answers[1]['decision_id']}")


def test_every_command_verifies_what_the_hub_hands_out(
    disclosed: tuple[Hub, list[dict[str, Any]]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hub, answers = disclosed
    p = _files(tmp_path, hub, answers)
    key = f"@{p['key']}"
    commands = [
        ["checkpoint", str(p["checkpoint"]), "--key", key, "--origin", "127.0.0.1:8000/audit"],
        ["receipt", str(p["receipt"]), "--key", key],
        ["inclusion", str(p["inclusion"]), "--checkpoint", str(p["checkpoint"]), "--key", key],
        [
            "consistency",
            str(p["consistency"]),
            "--old",
            str(p["old"]),
            "--new",
            str(p["checkpoint"]),
            "--key",
            key,
        ],
    ]
    for command in commands:
        assert main(command) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "checkpoint verifies" in out
    assert "inclusion verifies" in out
    assert "consistency verifies" in out


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (
            ["checkpoint", "{old}", "--key", "{key}", "--origin", "elsewhere"],
            "expected 'elsewhere'",
        ),
        (["inclusion", "{inclusion}", "--checkpoint", "{old}", "--key", "{key}"], "tree size"),
        (
            [
                "consistency",
                "{consistency}",
                "--old",
                "{checkpoint}",
                "--new",
                "{old}",
                "--key",
                "{key}",
            ],
            "sizes",
        ),
        (["receipt", "{checkpoint}", "--key", "{key}"], "is not JSON"),
        (
            ["checkpoint", "{checkpoint}", "--key", "nobody+00000000+AQ=="],
            "public key has wrong length",
        ),
        (["checkpoint", "{missing}", "--key", "{key}"], "No such file"),
    ],
    ids=["origin", "inclusion-size", "consistency-sizes", "not-json", "bad-key", "missing"],
)
def test_failures_exit_1_and_say_why(
    disclosed: tuple[Hub, list[dict[str, Any]]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
    message: str,
) -> None:
    hub, answers = disclosed
    p = _files(tmp_path, hub, answers)
    values = {name: str(path) for name, path in p.items()} | {
        "key": f"@{p['key']}",
        "missing": str(tmp_path / "missing"),
    }
    assert main([part.format(**values) for part in command]) == 1
    err = capsys.readouterr().err
    assert err.startswith("does not verify: ")
    assert message in err
