"""`make soak` works: a few seconds of it, and the rules that decide whether it passed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.soak import percentile, verdict

ROOT = Path(__file__).resolve().parents[1]
MIB = 2**20


def test_a_short_soak_drives_every_scenario_and_passes(tmp_path: Path) -> None:
    report_file = tmp_path / "soak.json"
    run = subprocess.run(
        [sys.executable, "-m", "tests.soak", "--duration", "8", "--json", str(report_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(report_file.read_text())
    assert report["ok"] is True
    assert report["errors"] == []
    for operation in (
        "disclosure",
        "denial",
        "consent give",
        "consent withdraw",
        "denial after withdrawal",
        "grant",
        "denial after grant expiry",
    ):
        assert report["counts"].get(operation, 0) > 0, operation
    assert report["rss_start_bytes"] > 10 * MIB  # a real server process was measured
    assert report["log"].startswith("audit log verifies")
    assert "soak: ok" in run.stdout
    assert "p99" in run.stdout


def test_any_failed_request_fails_the_soak() -> None:
    result = verdict(
        errors=["disclosure: expected 200, got 500"],
        rss_growth_bytes=0,
        max_growth_bytes=64 * MIB,
        log_verifies=True,
    )

    assert not result.ok
    assert result.problems == ["1 requests failed"]


def test_memory_growth_beyond_the_bound_fails_the_soak() -> None:
    result = verdict(
        errors=[], rss_growth_bytes=65 * MIB, max_growth_bytes=64 * MIB, log_verifies=True
    )

    assert not result.ok
    assert "grew by 65.0 MiB" in result.problems[0]


def test_a_log_that_does_not_verify_fails_the_soak() -> None:
    result = verdict(errors=[], rss_growth_bytes=0, max_growth_bytes=MIB, log_verifies=False)

    assert result.problems == ["the audit log does not verify"]


def test_a_clean_run_within_the_bound_passes() -> None:
    assert verdict(
        errors=[], rss_growth_bytes=63 * MIB, max_growth_bytes=64 * MIB, log_verifies=True
    ).ok


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]

    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([], 0.5) == 0.0
