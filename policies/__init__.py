"""The hub's Rego policies, their data and their Rego unit tests, as shipped files.

The files are laid out the way OPA loads a directory, so ``opa test policies/``, an OPA bundle
built from this folder and the hub's embedded engine all see the same ``data`` tree:

- ``*.rego`` files are policy modules; those named ``*_test.rego`` are Rego unit tests, each
  beside the module it tests;
- a file named ``data.json`` is placed in ``data`` by its folder, so
  ``hub/config/data.json`` becomes ``data.hub.config`` and
  ``hub/config/profiles/situation_table/data.json`` becomes
  ``data.hub.config.profiles.situation_table``.

What is where::

    hub/decision.rego                 package hub.decision: result, allow, membership, profile
    hub/decision/purpose.rego         the same package: purposes per stage, categories per purpose
    hub/decision/filters.rego         the four filters: who sees which category at which stage
    hub/decision/legal_basis.rego     consent, grants, the profile's bases, minors, precedence
    hub/decision/breakglass.rego      the emergency path
    hub/config/data.json              the shared vocabulary, hub-wide ceilings and defaults
    hub/config/profiles/<name>/data.json   one panel profile; a new profile is a new folder

``hub/decision.rego`` sorts before ``hub/decision/...``, so it is loaded first: regorus's
interpreter, which runs the Rego unit tests, needs the module holding ``allow`` and
``result`` first in a package split over several modules (OPA does not care).

This package only reads files. It never imports ``hub``: the hub reads the policies, not the
other way round.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

__all__ = [
    "PolicyDataError",
    "policy_data",
    "policy_modules",
    "policy_root",
    "revision",
    "test_modules",
]

_DATA_FILE_NAME = "data.json"
_TEST_SUFFIX = "_test.rego"

# Separates the fields of each file in the revision digest, so that moving bytes from one
# file's content into the next file's name can never give the same digest.
_REVISION_DOMAIN = b"interagency-hub policy revision v1\n"


class PolicyDataError(ValueError):
    """A ``data.json`` file is not valid JSON or clashes with another one."""


def policy_root() -> Path:
    """The folder that holds the ``.rego`` and ``data.json`` files.

    It is this package's own folder, found from ``__file__``, so it works from a source
    checkout and from an installed wheel alike (setuptools ships the files as package data).
    """
    return Path(__file__).resolve().parent


def _relative(path: Path) -> str:
    return path.relative_to(policy_root()).as_posix()


def _rego_files() -> list[Path]:
    return sorted(policy_root().rglob("*.rego"), key=_relative)


def _data_files() -> list[Path]:
    return sorted(policy_root().rglob(_DATA_FILE_NAME), key=_relative)


def policy_modules() -> list[tuple[str, str]]:
    """The policy modules as ``(relative path, text)``, sorted by path, without the tests."""
    return [
        (_relative(path), path.read_text(encoding="utf-8"))
        for path in _rego_files()
        if not path.name.endswith(_TEST_SUFFIX)
    ]


def test_modules() -> list[tuple[str, str]]:
    """The Rego unit test modules (``*_test.rego``) as ``(relative path, text)``, sorted."""
    return [
        (_relative(path), path.read_text(encoding="utf-8"))
        for path in _rego_files()
        if path.name.endswith(_TEST_SUFFIX)
    ]


# pytest would otherwise collect the function above as a test when a test module imports it.
test_modules.__test__ = False  # type: ignore[attr-defined]


def policy_data() -> dict[str, Any]:
    """The ``data`` tree: every ``data.json`` placed by its folder.

    ``hub/config/data.json`` holding ``{"purposes": ...}`` gives
    ``{"hub": {"config": {"purposes": ...}}}``.

    Raises:
        PolicyDataError: a file is not valid JSON, a file in a sub-folder does not hold a
            JSON object where another file's folder needs one, or two files set the same key.
    """
    tree: dict[str, Any] = {}
    for path in _data_files():
        relative = _relative(path)
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise PolicyDataError(f"{relative} is not valid JSON: {exc}") from exc
        folders = list(Path(relative).parent.parts)
        if not folders:
            if not isinstance(value, dict):
                raise PolicyDataError(f"{relative} must hold a JSON object at the root")
            _merge(tree, value, where=relative)
            continue
        node = tree
        for folder in folders[:-1]:
            child = node.setdefault(folder, {})
            if not isinstance(child, dict):
                raise PolicyDataError(f"{relative} clashes with a value at {folder!r}")
            node = child
        _merge(node, {folders[-1]: value}, where=relative)
    return tree


def _merge(target: dict[str, Any], source: dict[str, Any], *, where: str) -> None:
    # OPA refuses two data files that set the same key, so this does too: silently letting one
    # win would make the embedded engine and OPA disagree.
    for key, value in source.items():
        existing = target.get(key)
        if key not in target:
            target[key] = value
        elif isinstance(existing, dict) and isinstance(value, dict):
            _merge(existing, value, where=where)
        else:
            raise PolicyDataError(f"{where} sets {key!r}, which another data file already sets")


def revision() -> str:
    """The policy revision: the first 16 hex digits of a SHA-256 over policies and data.

    The digest covers every non-test ``.rego`` file and every ``data.json``, sorted by path,
    each as its path and its bytes, so the audit log can name exactly which policy decided.
    Tests are left out: changing a test does not change any decision.
    """
    files = [path for path in _rego_files() if not path.name.endswith(_TEST_SUFFIX)] + _data_files()
    digest = hashlib.sha256(_REVISION_DOMAIN)
    for path in sorted(files, key=_relative):
        name = _relative(path).encode("utf-8")
        content = path.read_bytes()
        digest.update(len(name).to_bytes(8, "big") + name)
        digest.update(len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()[:16]
