"""Audit the locked dependencies offline against a shipped advisory snapshot.

`make lint` runs `python -m tests.advisories check`: every `name==version` pin in
requirements/lock.txt (and the separately pinned requirements/regorus.txt and opa.txt) is
matched against `requirements/advisories.json`. Any match is printed with its advisory id and
aliases, and the command exits 1, unless `requirements/advisories-accepted.txt` accepts that
advisory for that package with a written reason (each one points at the test that shows why the
hub is not exposed). Withdrawn advisories are ignored.

The snapshot joins two sources:
- the PyPA advisory database (OSV format: ECOSYSTEM version ranges and explicit versions), for
  every PyPI package it covers, and
- the `vulnerabilities` that the package index's JSON API lists for the newest release of each
  locked package (OSV's view, GitHub advisories included), stored for exactly that release.

The check needs no network: builds on restricted networks cannot ask the live services that
`pip-audit` uses (the index's per-release JSON and OSV's query API), so the snapshot is shipped
and refreshed deliberately. To refresh it (after `make lock`):

    git clone --depth 1 https://github.com/pypa/advisory-database /tmp/advisory-database
    .venv/bin/python -m tests.advisories refresh /tmp/advisory-database \
        --index-json <the package index's JSON API base, the one ending in /pypi>

`refresh` needs PyYAML (present through the development dependencies) and records the
database's commit and date in the snapshot, which `check` prints (a copy without git history
takes them from `--commit` and `--date`). It also records which pins were their package's newest
release, the only ones the index's view covers; `check` names the others, which are checked
against the PyPA database alone and so only as recently as its date.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = ROOT / "requirements" / "advisories.json"
ACCEPTED = ROOT / "requirements" / "advisories-accepted.txt"
LOCKS = (
    ROOT / "requirements" / "lock.txt",
    ROOT / "requirements" / "regorus.txt",
    ROOT / "requirements" / "opa.txt",
)
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def normalise(name: str) -> str:
    """PEP 503 project name: lower case, runs of `-`, `_` and `.` made one `-`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lines: Iterable[str]) -> dict[str, str]:
    """`name==version` pins of a requirements file (hash and comment lines skipped)."""
    found = {}
    for line in lines:
        match = _PIN.match(line.strip())
        if match:
            found[normalise(match.group(1))] = match.group(2)
    return found


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    advisory: str
    aliases: tuple[str, ...]
    summary: str
    fixed: tuple[str, ...]


def _in_range(version: Version, events: Sequence[dict[str, str]]) -> bool:
    """OSV ECOSYSTEM range semantics: affected from an `introduced` up to (not including) a
    `fixed`, or up to and including a `last_affected`."""

    def key(event: dict[str, str]) -> Version:
        value = next(iter(event.values()))
        return Version("0") if value == "0" else Version(value)

    affected = False
    for event in sorted(events, key=key):
        if "introduced" in event and version >= key(event):
            affected = True
        elif ("fixed" in event and version >= key(event)) or (
            "last_affected" in event and version > key(event)
        ):
            affected = False
    return affected


def affects(affected: dict[str, Any], version: str) -> bool:
    """Whether one OSV `affected` entry covers this version of its package."""
    if version in affected.get("versions", []):
        return True
    try:
        parsed = Version(version)
    except InvalidVersion:
        return False
    for spec in affected.get("ranges", []):
        if spec.get("type") != "ECOSYSTEM":
            continue
        try:
            if _in_range(parsed, spec.get("events", [])):
                return True
        except InvalidVersion:
            continue
    return False


def audit(locked: dict[str, str], snapshot: dict[str, Any]) -> list[Finding]:
    """Every advisory in the snapshot that covers a locked version, each vulnerability once
    (the two sources name the same one by different ids, linked through aliases)."""
    findings: list[Finding] = []
    for package, version in sorted(locked.items()):
        seen: set[str] = set()
        for advisory in snapshot["advisories"].get(package, []):
            names = {advisory["id"], *advisory.get("aliases", [])}
            if names & seen:
                continue
            for affected in advisory["affected"]:
                if affects(affected, version):
                    seen |= names
                    fixed = tuple(
                        event["fixed"]
                        for spec in affected.get("ranges", [])
                        for event in spec.get("events", [])
                        if "fixed" in event
                    ) or tuple(affected.get("fixed", []))
                    findings.append(
                        Finding(
                            package=package,
                            version=version,
                            advisory=advisory["id"],
                            aliases=tuple(advisory.get("aliases", [])),
                            summary=advisory.get("summary", ""),
                            fixed=fixed,
                        )
                    )
                    break
    return findings


def _compact(document: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The fields `check` needs from one advisory file, keyed by its package."""
    if document.get("withdrawn"):
        return None
    affected = []
    package = None
    for entry in document.get("affected", []):
        meta = entry.get("package", {})
        if meta.get("ecosystem") != "PyPI":
            continue
        package = normalise(str(meta["name"]))
        ranges = [
            {
                "type": "ECOSYSTEM",
                "events": [{k: str(v) for k, v in e.items()} for e in r["events"]],
            }
            for r in entry.get("ranges", [])
            if r.get("type") == "ECOSYSTEM"
        ]
        item: dict[str, Any] = {"ranges": ranges}
        if not ranges:  # an explicit list only where no range says it
            item["versions"] = [str(v) for v in entry.get("versions", [])]
        affected.append(item)
    if package is None:
        return None
    details = str(document.get("summary") or document.get("details") or "").strip()
    return package, {
        "id": str(document["id"]),
        "aliases": [str(a) for a in document.get("aliases", [])],
        "summary": details.splitlines()[0][:160] if details else "",
        "affected": affected,
    }


def accepted(lines: Iterable[str]) -> dict[tuple[str, str], str]:
    """`<package> <advisory id or alias> <reason...>` lines; `#` starts a comment."""
    found = {}
    for line in lines:
        parts = line.split("#", 1)[0].split(maxsplit=2)
        if len(parts) == 3:
            found[(normalise(parts[0]), parts[1])] = parts[2]
    return found


def _from_index(
    index_json: str, locked: dict[str, str]
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """What the index's JSON API lists as vulnerabilities of each locked package's newest
    release, kept only where that release is the locked one; and which packages that was."""
    import httpx

    found: dict[str, list[dict[str, Any]]] = {}
    covered: list[str] = []
    with httpx.Client(timeout=30, follow_redirects=True) as http:
        for package, version in sorted(locked.items()):
            response = http.get(f"{index_json.rstrip('/')}/{package}/json")
            if response.status_code != 200:
                continue
            document = response.json()
            if document["info"]["version"] != version:
                continue
            covered.append(package)
            for vuln in document.get("vulnerabilities") or []:
                if vuln.get("withdrawn"):
                    continue
                text = str(vuln.get("summary") or vuln.get("details") or "").strip()
                found.setdefault(package, []).append(
                    {
                        "id": str(vuln["id"]),
                        "aliases": [str(a) for a in vuln.get("aliases") or []],
                        "summary": text.splitlines()[0][:160] if text else "",
                        "affected": [
                            {"versions": [version], "fixed": list(vuln.get("fixed_in") or [])}
                        ],
                    }
                )
    return found, covered


def refresh(
    database: Path,
    output: Path = SNAPSHOT,
    *,
    commit: str | None = None,
    date: str | None = None,
    index_json: str | None = None,
    locks: Sequence[Path] = LOCKS,
) -> int:
    """Rebuild the snapshot from a checkout of the PyPA advisory database and, with
    `index_json`, the index's view of each locked package's newest release; return its size."""
    import yaml  # type: ignore[import-untyped]  # only needed here, never by `check`

    advisories: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((database / "vulns").glob("*/*.yaml")):
        compact = _compact(yaml.safe_load(path.read_text(encoding="utf-8")))
        if compact is not None:
            advisories.setdefault(compact[0], []).append(compact[1])
    covered: list[str] | None = None
    if index_json:
        from_index, covered = _from_index(index_json, _locked(locks))
        for package, found in from_index.items():
            advisories.setdefault(package, []).extend(found)
    source = subprocess.run(
        ["git", "-C", str(database), "log", "-1", "--format=%H %cI"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    snapshot = {
        "source": "PyPA advisory database (OSV format)",
        "commit": commit or (source[0] if source else "unknown"),
        "date": date or (source[1] if len(source) > 1 else "unknown"),
        "index_checked": datetime.now(UTC).strftime("%Y-%m-%d") if index_json else None,
        # Locked packages that were their newest release then: only these have the index's view.
        "index_covered": covered,
        "advisories": dict(sorted(advisories.items())),
    }
    output.write_text(json.dumps(snapshot, separators=(",", ":"), sort_keys=True) + "\n")
    return sum(len(v) for v in advisories.values())


def _locked(locks: Sequence[Path]) -> dict[str, str]:
    locked: dict[str, str] = {}
    for lock in locks:
        locked |= pins(lock.read_text(encoding="utf-8").splitlines())
    return locked


def check(locks: Sequence[Path], snapshot_path: Path, accepted_path: Path = ACCEPTED) -> int:
    """Print every known vulnerability of a locked version; 1 if any is not accepted."""
    snapshot = json.loads(snapshot_path.read_text(encoding="utf-8"))
    locked = _locked(locks)
    if not locked:
        print("advisories: no pinned packages found", file=sys.stderr)
        return 1
    exceptions = accepted(accepted_path.read_text(encoding="utf-8").splitlines())
    open_findings = 0
    for f in audit(locked, snapshot):
        aliases = f" ({', '.join(f.aliases)})" if f.aliases else ""
        fixed = f"; fixed in {', '.join(f.fixed)}" if f.fixed else "; no fix"
        reason = next(
            (
                exceptions[(f.package, n)]
                for n in (f.advisory, *f.aliases)
                if (f.package, n) in exceptions
            ),
            None,
        )
        status = f"accepted: {reason}" if reason else "VULNERABLE"
        open_findings += reason is None
        print(f"{f.package}=={f.version}: {f.advisory}{aliases}{fixed}: {f.summary} [{status}]")
    print(
        f"advisories: {len(locked)} pinned packages checked against the snapshot of "
        f"{snapshot['date']} ({snapshot['commit'][:12]}; newest releases as the index listed "
        f"them on {snapshot.get('index_checked') or 'never'}): {open_findings} open vulnerabilities"
    )
    print(f"advisories: {index_coverage(locked, snapshot)}")
    return 1 if open_findings else 0


def index_coverage(locked: dict[str, str], snapshot: dict[str, Any]) -> str:
    """Which pins the index's view covers: a pin older than its package's newest release is
    checked against the PyPA database alone, which is as old as the snapshot's date."""
    covered = snapshot.get("index_covered")
    if covered is None:
        return "the snapshot does not record which pins the index's view covers"
    missing = sorted(set(locked) - set(covered))
    shown = ", ".join(f"{p}=={locked[p]}" for p in missing)
    return (
        f"{len(locked) - len(missing)} of {len(locked)} pins were their package's newest "
        f"release and also have the index's view; the rest only the PyPA database's"
        + (f": {shown}" if missing else "")
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.advisories")
    commands = parser.add_subparsers(dest="command", required=True)
    checking = commands.add_parser("check", help="audit the locks against the snapshot")
    checking.add_argument("--lock", type=Path, action="append", help="default: requirements/*")
    checking.add_argument("--snapshot", type=Path, default=SNAPSHOT)
    refreshing = commands.add_parser("refresh", help="rebuild the snapshot from a checkout")
    refreshing.add_argument("database", type=Path, help="a checkout of the PyPA advisory database")
    refreshing.add_argument("--commit", help="its commit, if the checkout is not a git work tree")
    refreshing.add_argument("--date", help="that commit's date (ISO 8601)")
    refreshing.add_argument("--index-json", help="the package index's JSON API base URL")
    args = parser.parse_args(argv)
    if args.command == "refresh":
        count = refresh(
            args.database, commit=args.commit, date=args.date, index_json=args.index_json
        )
        print(f"advisories: {count} advisories written to {SNAPSHOT.relative_to(ROOT)}")
        return 0
    return check(args.lock or LOCKS, args.snapshot)


if __name__ == "__main__":
    sys.exit(main())
