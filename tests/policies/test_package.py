"""The `policies` package: its files, data tree and revision, and the public surfaces."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import hub.policy
import policies

POLICIES_DIR = Path(policies.__file__).parent


def _own_public_names(module: ModuleType) -> set[str]:
    package = module.__name__
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, ModuleType)
        and (getattr(value, "__module__", None) or "").startswith(package)
    }


@pytest.mark.parametrize("module", [policies, hub.policy], ids=lambda m: m.__name__)
def test_all_is_complete_and_sorted(module: ModuleType) -> None:
    assert module.__all__ == sorted(module.__all__)
    assert set(module.__all__) == _own_public_names(module)
    for name in module.__all__:
        assert hasattr(module, name)


def test_policies_offers_the_agreed_api() -> None:
    assert policies.__all__ == [
        "PolicyDataError",
        "policy_data",
        "policy_modules",
        "policy_root",
        "revision",
        "test_modules",
    ]


def test_hub_policy_offers_the_agreed_api() -> None:
    assert {
        "EmbeddedPolicyEngine",
        "PolicyDecision",
        "PolicyEngine",
        "PolicyEngineError",
        "PolicyInput",
        "Reason",
    } <= set(hub.policy.__all__)


def test_policies_never_imports_hub() -> None:
    for path in POLICIES_DIR.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n == "hub" or n.startswith("hub.") for n in names), path
    code = (
        "import sys, policies\n"
        "policies.policy_data(); policies.revision(); policies.policy_modules()\n"
        "assert not [m for m in sys.modules if m == 'hub' or m.startswith('hub.')]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=POLICIES_DIR.parent)


def test_policy_root_holds_the_rego_files() -> None:
    root = policies.policy_root()
    assert root == POLICIES_DIR
    assert (root / "hub" / "decision.rego").is_file()


def test_modules_split_policies_from_tests() -> None:
    assert [path for path, _ in policies.policy_modules()] == [
        "hub/decision.rego",
        "hub/decision/breakglass.rego",
        "hub/decision/filters.rego",
        "hub/decision/legal_basis.rego",
        "hub/decision/purpose.rego",
    ]
    assert [path for path, _ in policies.test_modules()] == [
        "hub/config/profiles_test.rego",
        "hub/decision/breakglass_test.rego",
        "hub/decision/filters_test.rego",
        "hub/decision/legal_basis_test.rego",
        "hub/decision/purpose_test.rego",
        "hub/decision_test.rego",
        "hub/fixtures_test.rego",
    ]
    for _path, text in policies.policy_modules():
        assert text.startswith("# METADATA") and "package hub.decision\n" in text
        # One package in OPA 1.x syntax, read through the `config` rule, never an import.
        assert "\nimport " not in text


def test_policy_data_is_placed_by_folder() -> None:
    data = policies.policy_data()
    assert list(data) == ["hub"]
    assert list(data["hub"]) == ["config"]
    config_dir = POLICIES_DIR / "hub" / "config"
    shared = json.loads((config_dir / "data.json").read_text())
    assert "profiles" not in shared
    profiles = {
        path.parent.name: json.loads(path.read_text())
        for path in (config_dir / "profiles").glob("*/data.json")
    }
    assert set(profiles) == {"situation_table", "channel_panel", "safety_house"}
    assert data["hub"]["config"] == {**shared, "profiles": profiles}


def test_vocabulary() -> None:
    config = policies.policy_data()["hub"]["config"]
    purposes = set(config["purposes"])
    categories = set(config["categories"])
    assert purposes == {
        "screening",
        "risk_assessment",
        "intervention_planning",
        "safeguarding_emergency",
        "oversight",
        "statistics",
    }
    assert all(config["purposes"][p]["label"] for p in purposes)
    assert {c for c, v in config["categories"].items() if v["special"]} == {"health"}
    assert not categories & {"religion", "ethnicity", "political_opinion", "race"}
    assert set(config["stage_purposes"]) == {
        "referred",
        "screening",
        "assessment",
        "intervention",
        "signposted",
        "closed",
    }
    for allowed in config["stage_purposes"].values():
        assert set(allowed) <= purposes
    assert set(config["purpose_categories"]) == purposes
    for allowed in config["purpose_categories"].values():
        assert set(allowed) <= categories
    assert set(config["grant_legal_bases"]) <= set(config["legal_bases"]) - {"consent"}
    assert set(config["profile_legal_bases"]) <= set(config["legal_bases"]) - {
        "consent",
        "vital_interests",
    }
    assert config["legal_basis_precedence"] == ["consent", "legal_obligation", "public_task"]
    assert set(config["stages"]) == set(config["stage_purposes"])
    assert {stage for stage, terms in config["stages"].items() if not terms["open"]} == {
        "signposted",
        "closed",
    }
    assert {"religion", "ethnicity", "political_opinion"} <= set(config["refused_categories"])
    assert not categories & set(config["refused_categories"])
    assert config["break_glass"] == {
        "purpose": "safeguarding_emergency",
        "legal_basis": "vital_interests",
        "min_justification_chars": 20,
    }


@pytest.mark.parametrize("name", ["situation_table", "channel_panel", "safety_house"])
def test_profiles(name: str) -> None:
    config = policies.policy_data()["hub"]["config"]
    profile = config["profiles"][name]
    assert set(profile) == {
        "label",
        "description",
        "age_of_consent",
        "stage_purposes",
        "purpose_categories",
        "release",
        "legal_bases",
        "break_glass",
        "threshold",
        "workflow",
    }
    assert profile["age_of_consent"] == (18 if name == "channel_panel" else 16)
    assert str(profile["age_of_consent"]) in profile["description"]
    assert profile["break_glass"]["max_hours"] == 72
    assert set(profile["break_glass"]["categories"]) <= set(config["categories"])
    assert {"name", "label", "description", "dimensions"} <= set(profile["threshold"])
    for stage, purposes in profile["stage_purposes"].items():
        assert set(purposes) <= set(config["stage_purposes"][stage])
    for term in profile["legal_bases"].values():
        assert term["basis"] in config["profile_legal_bases"]
        assert "health" not in term["categories"]


def test_profile_differences() -> None:
    profiles = policies.policy_data()["hub"]["config"]["profiles"]
    assert profiles["situation_table"]["threshold"]["name"] == "acutely_elevated_risk"
    assert profiles["channel_panel"]["threshold"]["dimensions"] == [
        "engagement",
        "intent",
        "capability",
    ]
    bases = {
        name: {term["basis"] for term in profile["legal_bases"].values()}
        for name, profile in profiles.items()
    }
    assert bases == {
        "situation_table": {"public_task"},
        "channel_panel": {"legal_obligation"},
        "safety_house": {"public_task"},
    }

    def covers_identity(name: str) -> bool:
        return any(
            "identity" in term["categories"] for term in profiles[name]["legal_bases"].values()
        )

    # Only the safety house's covenant covers identity; the others need consent or a grant.
    assert [name for name in sorted(profiles) if covers_identity(name)] == ["safety_house"]


def test_revision_is_16_hex_and_stable() -> None:
    assert re.fullmatch(r"[0-9a-f]{16}", policies.revision())
    assert policies.revision() == policies.revision()


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_revision_follows_policy_and_data_but_not_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _tree(
        tmp_path,
        {
            "a/p.rego": "package a.p\n",
            "a/p_test.rego": "package a.p_test\n",
            "a/data.json": "{}",
        },
    )
    monkeypatch.setattr(policies, "policy_root", lambda: root)
    first = policies.revision()
    (root / "a/p_test.rego").write_text("package a.p_test\ntest_x if true\n")
    assert policies.revision() == first
    (root / "a/data.json").write_text('{"x": 1}')
    second = policies.revision()
    assert second != first
    (root / "a/p.rego").write_text("package a.p\nx := 1\n")
    assert policies.revision() not in {first, second}


def test_policy_data_merges_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(
        tmp_path,
        {
            "data.json": '{"top": 1}',
            "a/data.json": '{"x": 1}',
            "a/b/data.json": '{"y": 2}',
            "c/d/data.json": "[1, 2]",
        },
    )
    monkeypatch.setattr(policies, "policy_root", lambda: root)
    assert policies.policy_data() == {
        "top": 1,
        "a": {"x": 1, "b": {"y": 2}},
        "c": {"d": [1, 2]},
    }


@pytest.mark.parametrize(
    ("files", "match"),
    [
        ({"a/data.json": "{"}, "a/data.json is not valid JSON"),
        ({"data.json": "[1]"}, "must hold a JSON object at the root"),
        ({"data.json": '{"a": {"b": 1}}', "a/data.json": '{"b": 2}'}, "sets 'b'"),
        ({"a/data.json": "1", "a/z/data.json": "{}"}, "clashes with a value at 'a'"),
    ],
    ids=["invalid-json", "root-not-object", "same-key", "value-in-the-way"],
)
def test_policy_data_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str], match: str
) -> None:
    root = _tree(tmp_path, files)
    monkeypatch.setattr(policies, "policy_root", lambda: root)
    with pytest.raises(policies.PolicyDataError, match=match):
        policies.policy_data()
