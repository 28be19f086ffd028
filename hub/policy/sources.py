"""A policy set read from any folder laid out the way OPA loads one.

The rules are those of the ``policies`` package, which only reads its own folder: ``*.rego``
files are modules, those named ``*_test.rego`` are Rego unit tests, and each ``data.json`` is
placed in ``data`` by its folder. ``PolicySet.from_directory(policies.policy_root())`` gives
exactly what ``policies`` gives (a test checks it), so ``hub policy test --policies DIR`` and
``hub policy bundle`` treat the shipped folder and any other one alike.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import policies

_DATA_FILE_NAME = "data.json"
_TEST_SUFFIX = "_test.rego"
# The same domain and framing as policies.revision(), so both name a folder alike.
_REVISION_DOMAIN = b"interagency-hub policy revision v1\n"


class PolicySourceError(ValueError):
    """A policy folder cannot be read: missing, unreadable, not UTF-8, or its data clash."""


@dataclass(frozen=True)
class PolicySet:
    """Policy modules, Rego tests and data files read from one folder, paths relative to it."""

    module_files: tuple[tuple[str, bytes], ...]
    """Non-test ``.rego`` files as ``(relative path, bytes)``, sorted by path."""
    modules: tuple[tuple[str, str], ...]
    """The same files as ``(relative path, text)``, as the engines take them."""
    tests: tuple[tuple[str, str], ...]
    """``*_test.rego`` files as ``(relative path, text)``, sorted by path."""
    data_files: tuple[tuple[str, bytes], ...]
    """``data.json`` files as ``(relative path, bytes)``, sorted by path."""
    data: dict[str, Any]
    """The ``data`` tree the data files make, as ``policies.policy_data()`` builds it."""
    revision: str
    """The first 16 hex digits of the SHA-256 that ``policies.revision()`` computes."""

    @classmethod
    def shipped(cls) -> Self:
        """The policies shipped in the ``policies`` package.

        Raises:
            PolicySourceError: a shipped file cannot be read or the data clash.
        """
        return cls.from_directory(policies.policy_root())

    @classmethod
    def from_directory(cls, root: Path) -> Self:
        """Read every ``.rego`` and ``data.json`` file under ``root``.

        Raises:
            PolicySourceError: ``root`` is not a folder, a file cannot be read or is not UTF-8,
                a data file is not JSON, or two data files set the same key.
        """
        if not root.is_dir():
            raise PolicySourceError(f"policy folder {root} is not a directory")
        try:
            rego = {_relative(root, p): p.read_bytes() for p in root.rglob("*.rego")}
            data_files = {_relative(root, p): p.read_bytes() for p in root.rglob(_DATA_FILE_NAME)}
            texts = {path: raw.decode("utf-8") for path, raw in rego.items()}
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicySourceError(f"cannot read the policy folder {root}: {exc}") from exc
        try:
            data = _data_tree(data_files)
        except policies.PolicyDataError as exc:
            raise PolicySourceError(str(exc)) from exc
        module_files = {p: raw for p, raw in rego.items() if not p.endswith(_TEST_SUFFIX)}
        return cls(
            module_files=tuple(sorted(module_files.items())),
            modules=tuple(sorted((p, texts[p]) for p in module_files)),
            tests=tuple(sorted((p, t) for p, t in texts.items() if p.endswith(_TEST_SUFFIX))),
            data_files=tuple(sorted(data_files.items())),
            data=data,
            revision=_revision(module_files | data_files),
        )


def _relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _data_tree(files: dict[str, bytes]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for relative, raw in sorted(files.items()):
        try:
            value = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise policies.PolicyDataError(f"{relative} is not valid JSON: {exc}") from exc
        folders = list(Path(relative).parent.parts)
        if not folders:
            if not isinstance(value, dict):
                raise policies.PolicyDataError(f"{relative} must hold a JSON object at the root")
            _merge(tree, value, where=relative)
            continue
        node = tree
        for folder in folders[:-1]:
            child = node.setdefault(folder, {})
            if not isinstance(child, dict):
                raise policies.PolicyDataError(f"{relative} clashes with a value at {folder!r}")
            node = child
        _merge(node, {folders[-1]: value}, where=relative)
    return tree


def _merge(target: dict[str, Any], source: dict[str, Any], *, where: str) -> None:
    # As policies does, and OPA: two data files that set the same key are refused.
    for key, value in source.items():
        existing = target.get(key)
        if key not in target:
            target[key] = value
        elif isinstance(existing, dict) and isinstance(value, dict):
            _merge(existing, value, where=where)
        else:
            raise policies.PolicyDataError(
                f"{where} sets {key!r}, which another data file already sets"
            )


def _revision(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256(_REVISION_DOMAIN)
    for path, content in sorted(files.items()):
        name = path.encode("utf-8")
        digest.update(len(name).to_bytes(8, "big") + name)
        digest.update(len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()[:16]
