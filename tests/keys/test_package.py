from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import keys
import keys.hazmat
import keys.hazmat.primitives

KEYS_DIR = Path(keys.__file__).parent


def _public_names(module: ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        # "annotations" is the `from __future__` import, not an export.
        if not name.startswith("_") and name != "annotations" and not isinstance(value, ModuleType)
    }


@pytest.mark.parametrize("module", [keys, keys.hazmat], ids=lambda m: m.__name__)
def test_all_is_complete_and_sorted(module: ModuleType) -> None:
    assert module.__all__ == sorted(module.__all__)
    assert set(module.__all__) == _public_names(module)


def test_keys_offers_the_agreed_api() -> None:
    assert keys.__all__ == [
        "DataKey",
        "DecryptionError",
        "EnvMasterKey",
        "KeyFileMasterKey",
        "KeyRing",
        "KeyStoreError",
        "KeysError",
        "MasterKeyBackend",
        "MasterKeyError",
        "PassphraseMasterKey",
        "load_master_key",
        "master_key_backend",
    ]
    for error in (keys.MasterKeyError, keys.KeyStoreError, keys.DecryptionError):
        assert issubclass(error, keys.KeysError)


def test_hazmat_docstring_opens_with_a_warning() -> None:
    for module in (keys.hazmat, keys.hazmat.primitives):
        assert (module.__doc__ or "").startswith("WARNING: raw cryptographic primitives")


def _imported_roots(source: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", None))
            in {"import_module", "__import__"}
        ):
            roots.update(
                arg.value.split(".")[0]
                for arg in node.args
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            )
    return roots


def test_no_module_in_keys_imports_hub() -> None:
    sources = sorted(KEYS_DIR.rglob("*.py"))
    assert len(sources) >= 5
    offenders = [str(s.relative_to(KEYS_DIR)) for s in sources if "hub" in _imported_roots(s)]
    assert offenders == []


def test_the_import_scan_would_catch_hub(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    for line in (
        "import hub",
        "import hub.api as api",
        "from hub.errors import X",
        "from hub import x",
    ):
        sample.write_text(line + "\n")
        assert "hub" in _imported_roots(sample), line


def test_importing_keys_does_not_load_hub() -> None:
    probe = "import sys, keys; print(sorted(m for m in sys.modules if m.split('.')[0] == 'hub'))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
