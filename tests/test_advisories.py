"""The offline dependency audit in `make lint`: it finds what it should, and the lock is clean."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.advisories import (
    ACCEPTED,
    LOCKS,
    SNAPSHOT,
    accepted,
    audit,
    check,
    index_coverage,
    pins,
)

JINJA_SANDBOX_ESCAPE: dict[str, Any] = {
    "id": "TEST-0001",
    "aliases": ["CVE-0000-0001"],
    "summary": "sandbox escape",
    "affected": [
        {"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "3.0.0"}, {"fixed": "3.1.5"}]}]}
    ],
}


def snapshot(**advisories: list[dict[str, Any]]) -> dict[str, Any]:
    return {"commit": "0" * 40, "date": "2026-01-01", "advisories": advisories}


def test_a_version_inside_a_range_is_found_and_one_at_the_fix_is_not() -> None:
    found = audit({"jinja2": "3.1.4"}, snapshot(jinja2=[JINJA_SANDBOX_ESCAPE]))

    assert [(f.package, f.advisory, f.fixed) for f in found] == [
        ("jinja2", "TEST-0001", ("3.1.5",))
    ]
    assert audit({"jinja2": "3.1.5"}, snapshot(jinja2=[JINJA_SANDBOX_ESCAPE])) == []
    assert audit({"jinja2": "2.11.3"}, snapshot(jinja2=[JINJA_SANDBOX_ESCAPE])) == []


def test_last_affected_and_explicit_versions_are_honoured() -> None:
    advisory = {
        "id": "TEST-0002",
        "affected": [
            {
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"last_affected": "1.2"}]}
                ]
            },
            {"ranges": [], "versions": ["2.0rc1"]},
        ],
    }
    versions = ["1.0", "1.2", "1.2.1", "2.0rc1", "2.0"]

    hit = [v for v in versions if audit({"demo-pkg": v}, snapshot(**{"demo-pkg": [advisory]}))]

    assert hit == ["1.0", "1.2", "2.0rc1"]


def test_one_vulnerability_known_by_two_ids_is_reported_once() -> None:
    twin = {**JINJA_SANDBOX_ESCAPE, "id": "PYSEC-0000-1", "aliases": ["TEST-0001"]}

    found = audit({"jinja2": "3.1.0"}, snapshot(jinja2=[JINJA_SANDBOX_ESCAPE, twin]))

    assert len(found) == 1


def test_pins_are_read_from_hashed_requirements() -> None:
    lines = [
        "# comment",
        "Jinja2==3.1.4 \\",
        "    --hash=sha256:abc",
        "psycopg[binary]==3.2.0 ; python_version >= '3.11'",
        "    # via interagency-hub",
    ]

    assert pins(lines) == {"jinja2": "3.1.4", "psycopg": "3.2.0"}


def test_an_unaccepted_finding_fails_the_check_and_an_accepted_one_does_not(
    tmp_path: Path,
) -> None:
    lock = tmp_path / "lock.txt"
    lock.write_text("jinja2==3.1.4 \\\n    --hash=sha256:abc\n")
    snap = tmp_path / "advisories.json"
    snap.write_text(json.dumps(snapshot(jinja2=[JINJA_SANDBOX_ESCAPE])))
    none_accepted = tmp_path / "none.txt"
    none_accepted.write_text("# nothing\n")
    by_alias = tmp_path / "accepted.txt"
    by_alias.write_text("jinja2 CVE-0000-0001 templates never come from users\n")

    assert check([lock], snap, none_accepted) == 1
    assert check([lock], snap, by_alias) == 0


def test_the_shipped_lock_has_no_open_known_vulnerability() -> None:
    locked: dict[str, str] = {}
    for lock in LOCKS:
        locked |= pins(lock.read_text().splitlines())
    assert {"fastapi", "cryptography", "gordon-to-regorus", "pytest"} <= set(locked)

    assert check(LOCKS, SNAPSHOT, ACCEPTED) == 0


def test_every_accepted_advisory_names_a_test_that_exists() -> None:
    root = Path(__file__).resolve().parents[1]
    for reason in accepted(ACCEPTED.read_text().splitlines()).values():
        path, _, name = reason.rsplit("(", 1)[1].rstrip(")").partition("::")
        assert f"def {name}(" in (root / path).read_text(), reason


def test_the_check_names_the_pins_that_only_the_pypa_database_covers() -> None:
    locked = {"jinja2": "3.1.4", "psycopg": "3.2.0"}
    covered = {**snapshot(), "index_covered": ["jinja2"]}

    assert index_coverage(locked, covered) == (
        "1 of 2 pins were their package's newest release and also have the index's view; "
        "the rest only the PyPA database's: psycopg==3.2.0"
    )
    assert "does not record" in index_coverage(locked, snapshot())


def test_the_shipped_snapshot_says_which_pins_the_index_covers() -> None:
    shipped = json.loads(SNAPSHOT.read_text())
    locked: dict[str, str] = {}
    for lock in LOCKS:
        locked |= pins(lock.read_text().splitlines())

    assert shipped["index_checked"] and set(shipped["index_covered"]) <= set(locked)
