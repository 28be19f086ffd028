"""The rooms talk one way: `hub` uses consent, connectors, keys and policies, never the reverse;
and the API's closed vocabularies are exactly the policy's."""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path

import pytest

import consent
from hub import vocabulary

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(package: str) -> set[str]:
    found: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
    return found


@pytest.mark.parametrize("package", ["consent", "connectors", "keys", "policies"])
def test_libraries_never_import_hub(package: str) -> None:
    offending = {m for m in imported_modules(package) if m == "hub" or m.startswith("hub.")}
    assert offending == set()


def test_consent_exports_are_complete() -> None:
    public = {
        name
        for name in dir(consent)
        if not name.startswith("_") and not inspect.ismodule(getattr(consent, name))
    }
    assert set(consent.__all__) == public - {"annotations"}


def test_api_vocabulary_matches_the_policy_data() -> None:
    data = json.loads((ROOT / "policies/hub/config/data.json").read_text())
    assert set(vocabulary.PURPOSES) == set(data["purposes"])
    assert set(vocabulary.CATEGORIES) == set(data["categories"])
    assert set(vocabulary.STAGES) == set(data["stage_purposes"])
    assert vocabulary.REFUSED_GROUNDS.isdisjoint(data["categories"])


def test_purposes_and_legal_bases_carry_their_dpv_terms() -> None:
    data = json.loads((ROOT / "policies/hub/config/data.json").read_text())
    for section in ("purposes", "legal_bases"):
        for name, entry in data[section].items():
            assert str(entry.get("dpv", "")).startswith("dpv:"), f"{section}.{name}"
