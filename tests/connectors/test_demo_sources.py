from __future__ import annotations

import datetime as dt
import json
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from connectors import Record, SourceQuery, build_connector, load_connector_config
from hub.demo.people import (
    ACADEMY,
    CHILDRENS_SERVICES,
    DEMO_AGENCIES,
    DEMO_PEOPLE,
    LOCAL_ID_COLUMNS,
    POLICE,
    SOURCE_RECORDS,
    YOUTH_WORK,
)
from hub.demo.sources import write_demo_sources

from .conftest import DemoSources

SLUGS = [POLICE, CHILDRENS_SERVICES, ACADEMY, YOUTH_WORK]
CATEGORIES = {
    POLICE: {"identity", "police_contact", "behavioural_indicators"},
    CHILDRENS_SERVICES: {"identity", "contact", "social_care", "protective_factors"},
    ACADEMY: {"identity", "education", "behavioural_indicators", "protective_factors"},
    YOUTH_WORK: {"intervention_history", "protective_factors"},
}


def _snapshot(directory: Path) -> dict[str, Any]:
    files: dict[str, Any] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix == ".db":
            with sqlite3.connect(path) as db:
                files[path.name] = list(db.iterdump())
            db.close()
        else:
            files[path.name] = path.read_bytes()
    return files


def test_demo_panel_has_the_agreed_agencies_and_people() -> None:
    assert [a.slug for a in DEMO_AGENCIES] == SLUGS
    assert [a.kind for a in DEMO_AGENCIES] == ["police", "social_services", "school", "cso"]
    today = dt.date.today()
    ages = [(today - dt.date.fromisoformat(p.date_of_birth)).days // 365 for p in DEMO_PEOPLE]
    assert any(age < 18 for age in ages)
    assert any(age >= 18 for age in ages)
    assert all(set(p.local_ids) <= set(SLUGS) for p in DEMO_PEOPLE)
    assert any(set(p.local_ids) != set(SLUGS) for p in DEMO_PEOPLE)
    for slug in SLUGS:
        ids = [p.local_ids[slug] for p in DEMO_PEOPLE if slug in p.local_ids]
        assert len(ids) == len(set(ids)), f"{slug} gives two people one local id"


def test_every_source_row_belongs_to_a_demo_person() -> None:
    for slug, tables in SOURCE_RECORDS.items():
        known = {p.local_ids[slug] for p in DEMO_PEOPLE if slug in p.local_ids}
        for rows in tables.values():
            assert {row[LOCAL_ID_COLUMNS[slug]] for row in rows} <= known


def test_write_demo_sources_is_idempotent_and_keeps_tokens(tmp_path: Path) -> None:
    first = write_demo_sources(tmp_path, rest_base_url="http://127.0.0.1:8101/")
    before = _snapshot(tmp_path)
    second = write_demo_sources(tmp_path, rest_base_url="http://127.0.0.1:8101")

    assert first == second == {slug: tmp_path / f"{slug}.toml" for slug in SLUGS}
    assert _snapshot(tmp_path) == before
    assert sorted(before) == sorted(
        [f"{s}.toml" for s in SLUGS]
        + [f"{s}.db" for s in (POLICE, ACADEMY)]
        + [f"{s}.token" for s in (CHILDRENS_SERVICES, YOUTH_WORK)]
    )


def test_token_files_are_private_and_distinct(tmp_path: Path) -> None:
    write_demo_sources(tmp_path, rest_base_url="http://127.0.0.1:8101")
    tokens = [tmp_path / f"{slug}.token" for slug in (CHILDRENS_SERVICES, YOUTH_WORK)]

    assert [stat.S_IMODE(t.stat().st_mode) for t in tokens] == [0o600, 0o600]
    values = [t.read_text(encoding="utf-8").strip() for t in tokens]
    assert values[0] != values[1]
    assert all(len(v) >= 32 for v in values)


def test_empty_or_loose_token_files_are_repaired(tmp_path: Path) -> None:
    loose = tmp_path / f"{YOUTH_WORK}.token"
    empty = tmp_path / f"{CHILDRENS_SERVICES}.token"
    loose.write_text("kept-token\n", encoding="utf-8")
    loose.chmod(0o644)
    empty.write_text("", encoding="utf-8")
    empty.chmod(0o644)

    write_demo_sources(tmp_path, rest_base_url="http://127.0.0.1:8101")

    assert loose.read_text(encoding="utf-8") == "kept-token\n"
    assert empty.read_text(encoding="utf-8").strip()
    assert stat.S_IMODE(loose.stat().st_mode) == stat.S_IMODE(empty.stat().st_mode) == 0o600


@pytest.mark.parametrize("slug", SLUGS)
def test_each_demo_connector_supplies_its_categories(demo_sources: DemoSources, slug: str) -> None:
    config = load_connector_config(demo_sources.configs[slug])

    assert set(config.categories) == CATEGORIES[slug]
    assert config.kind == ("sql" if slug in (POLICE, ACADEMY) else "rest")


def _unmapped_values(slug: str, mapped: set[str]) -> set[str]:
    """Text values of columns no category maps (notes, relatives' names), and local ids."""
    values = set()
    for rows in SOURCE_RECORDS[slug].values():
        for row in rows:
            values |= {v for k, v in row.items() if k not in mapped and isinstance(v, str)}
    return values


@pytest.mark.parametrize("slug", SLUGS)
def test_only_mapped_fields_leave_a_demo_source(demo_sources: DemoSources, slug: str) -> None:
    config = load_connector_config(demo_sources.configs[slug])
    mapped = {f for rule in config.categories.values() for f in rule.fields}
    third_party = {f for rule in config.categories.values() for f in rule.third_party}
    secrets = _unmapped_values(slug, mapped)
    assert secrets, "every demo source holds data that must stay inside it"

    shared: list[Record] = []
    with build_connector(config) as connector:
        for person in DEMO_PEOPLE:
            if slug in person.local_ids:
                query = SourceQuery(person.local_ids[slug], tuple(sorted(connector.categories)))
                shared += connector.fetch(query).records
        assert connector.fetch(SourceQuery("UNKNOWN-1", tuple(connector.categories))).records == ()

    assert {r.category for r in shared} == CATEGORIES[slug]
    for record in shared:
        assert set(record.fields) <= mapped | third_party
        assert all(
            record.fields[f] in ("[redacted]", None) for f in third_party & set(record.fields)
        )
    text = json.dumps([r.fields for r in shared])
    assert [s for s in secrets if s in text] == []
