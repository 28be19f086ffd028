from __future__ import annotations

import ast
import re
from pathlib import Path
from types import ModuleType

import pytest

import connectors
from connectors import (
    CONNECTORS,
    CategoryRule,
    ConnectorConfig,
    ConnectorConfigError,
    RestConnector,
    SqlConnector,
    build_connector,
)

CONNECTORS_DIR = Path(connectors.__file__).parent


def _isort_key(name: str) -> tuple[int, str]:
    # The order ruff's RUF022 enforces: CONSTANTS, then Classes, then functions.
    if name.isupper():
        return (0, name)
    return (1 if name[0].isupper() else 2, name)


def test_all_is_complete_and_sorted() -> None:
    public = {
        name
        for name, value in vars(connectors).items()
        if not name.startswith("_") and name != "annotations" and not isinstance(value, ModuleType)
    }

    assert connectors.__all__ == sorted(connectors.__all__, key=_isort_key)
    assert set(connectors.__all__) == public


def test_connectors_never_import_hub() -> None:
    offenders = []
    for path in sorted(CONNECTORS_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else []
            else:
                continue
            offenders += [f"{path.name}: {n}" for n in names if re.match(r"hub(\.|$)", n)]
    assert offenders == []


def test_connectors_lists_every_kind() -> None:
    assert dict(CONNECTORS) == {"sql": SqlConnector, "rest": RestConnector}


@pytest.mark.parametrize(
    ("kind", "settings", "source", "expected"),
    [
        ("sql", {"url": "sqlite:////x.db"}, "SELECT a FROM t WHERE id = :local_id", SqlConnector),
        ("rest", {"base_url": "http://127.0.0.1:1"}, "/people/{local_id}", RestConnector),
    ],
)
def test_build_connector_picks_the_class_for_the_kind(
    kind: str, settings: dict[str, str], source: str, expected: type[object]
) -> None:
    config = ConnectorConfig(kind, settings, {"identity": CategoryRule(source, fields=("a",))})

    connector = build_connector(config)

    assert isinstance(connector, expected)
    assert connector.categories == {"identity"}
    connector.close()


def test_config_of_unknown_kind_cannot_be_built() -> None:
    rule = CategoryRule("/people/{local_id}", fields=("a",))

    with pytest.raises(ConnectorConfigError, match=r"source\.kind 'ftp' is unknown"):
        build_connector(ConnectorConfig("ftp", {}, {"identity": rule}))
