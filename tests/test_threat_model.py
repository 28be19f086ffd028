"""docs/threat-model.md stays true: every test it names exists, every component has a row for
each STRIDE category, and every row names at least one test."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "threat-model.md"
COMPONENTS = (
    "API",
    "Token service",
    "Policy engine",
    "Connectors",
    "Keys",
    "Audit log",
    "Storage",
    "Web UI",
    "CLI",
)
ACTORS = ("curious insider agency", "malicious operator", "compromised agency system")
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def sections() -> dict[str, str]:
    """Level-2 headings of the document, by their first words, with their text."""
    parts = re.split(r"^## ", DOC.read_text(encoding="utf-8"), flags=re.M)[1:]
    return {part.split("\n", 1)[0].strip(): part for part in parts}


def component_section(name: str) -> str:
    matches = [text for title, text in sections().items() if title.split(" (")[0] == name]
    assert len(matches) == 1, f"no single section for {name}"
    return matches[0]


@cache
def defined_tests(path: str) -> frozenset[str]:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    return frozenset(
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    )


def test_every_named_test_exists() -> None:
    references = REFERENCE.findall(DOC.read_text(encoding="utf-8"))
    assert len(references) > 50

    missing = [
        f"{path}::{name}"
        for path, name in references
        if not (ROOT / path).is_file() or name not in defined_tests(path)
    ]

    assert missing == []


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_component_has_every_stride_row_with_a_test(component: str) -> None:
    rows = [
        line
        for line in component_section(component).splitlines()
        if re.match(r"^\| [STRIDE] \|", line)
    ]

    assert [row[2] for row in rows] == list("STRIDE")
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert len(cells) == 4 and all(cells), row
        assert REFERENCE.search(cells[3]), f"{component} {cells[0]}: no test named"


def test_assets_and_the_required_actors_are_described() -> None:
    titles = sections()
    assert "Assets" in titles and "Actors" in titles
    actors = titles["Actors"].lower()
    for actor in ACTORS:
        assert f"| {actor} |" in actors, actor


def test_the_checker_would_notice_a_test_that_does_not_exist() -> None:
    fake = "`tests/test_threat_model.py::test_that_was_never_written`"
    path, name = REFERENCE.findall(fake)[0]

    assert name not in defined_tests(path)
    assert "test_every_named_test_exists" in defined_tests(path)
