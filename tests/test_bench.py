"""`python -m bench` in its tiny mode: every figure lands in the JSON and the docs are rewritten.

Nothing here looks at how fast anything was (timings belong in the benchmark); it checks that
the harness really drove the hub and the baseline, measured every part and judged every target.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

from bench import load
from bench.__main__ import QUICK, main
from bench.report import MARKER

TARGETS = (
    "hub/baseline at c=",
    "hub p99 at c=",
    "disclosures/s",
    "one worker's peak RSS",
    "policy decision, embedded, median",
    "durable appends/s",
    "verify at",
    "inclusion proof at 10^6 entries",
)


def _load_figures(run: dict[str, Any]) -> None:
    assert run["ok"] > 0
    assert run["errors"] == 0, run["error_kinds"]
    assert run["throughput_per_s"] > 0
    assert 0 < run["p50_ms"] <= run["p99_ms"]


def test_quick_run_writes_every_figure_and_regenerates_the_docs(
    database_url: str, tmp_path: Path
) -> None:
    backend = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    results, docs = tmp_path / "latest.json", tmp_path / "benchmarks.md"
    docs.write_text("stale page from an earlier run\n")

    main(["--quick", "--databases", backend, "--results", str(results), "--docs", str(docs),
          "--logs", str(tmp_path / "logs")])  # fmt: skip

    data = json.loads(results.read_text())
    assert data["quick"] is True
    assert data["machine"]["cpu_count"] >= 1 and data["machine"]["python"]
    # Every stage started after the wait for a quiet machine, bounded by the plan's limit.
    assert set(data["settled_s"]) == {"policy_and_pseudonyms", f"e2e_{backend}", "audit"}
    assert all(0 <= s < QUICK.settle_seconds + 5 for s in data["settled_s"].values())
    [e2e] = data["e2e"]
    assert e2e["backend"] == backend and e2e["workers"] == 2
    assert e2e["records_per_answer"] > 0  # the baseline was checked to carry the same
    assert [r["concurrency"] for r in e2e["runs"]] == list(QUICK.concurrencies)
    for run in e2e["runs"]:
        _load_figures(run["hub"])
        _load_figures(run["baseline"])
        assert run["ratio"] > 0
    assert e2e["hub_worker_peak_rss_mb"] > 0 and e2e["baseline_worker_peak_rss_mb"] > 0
    growth = e2e["growth"]["steps"]
    assert [s["cases"] for s in growth] == [size + 1 for size in QUICK.growth_sizes]
    # The log grows with the cases: at least as many entries as seeded cases at every step.
    assert all(s["consents"] >= s["cases"] and s["log_entries"] >= s["cases"] - 1 for s in growth)
    assert all(s["p50_ms"] > 0 and s["proof_ms"] > 0 and s["errors"] == 0 for s in growth)
    policy = data["parts"]["policy"]
    for engine in ("embedded", "opa", "remote_opa"):
        assert 0 < policy[engine]["median_us"] <= policy[engine]["p99_us"]
    assert data["parts"]["pseudonym"]["median_us"] > 0
    audit = data["parts"]["audit"][backend]
    assert audit["appends_per_s"] > 0
    assert [log["entries"] for log in audit["logs"]] == list(QUICK.audit_sizes)
    assert all(log["proof_ms"] > 0 and log["verify_entries_per_s"] > 0 for log in audit["logs"])
    names = [t["target"] for t in data["targets"]]
    assert all(any(name.startswith(prefix) for name in names) for prefix in TARGETS)
    assert all(t["met"] in (True, False, None) for t in data["targets"])

    page = docs.read_text()
    assert "stale page" not in page and MARKER in page
    assert data["machine"]["date"] in page and data["machine"]["cpu_model"] in page
    assert all(t["target"] in page for t in data["targets"])
    assert "## Where the time goes" in page


class _Alternating(BaseHTTPRequestHandler):
    """Answers 200 and 403 by turns, and remembers what it was sent."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[tuple[str | None, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append((self.headers.get("Authorization"), body))
        self.send_response(200 if len(self.seen) % 2 == 0 else 403)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_args: Any) -> None:
        pass


def test_the_load_generator_counts_other_answers_as_errors_and_stops_at_its_cap() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Alternating)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        figures = load.run(
            {
                "url": f"http://127.0.0.1:{server.server_address[1]}/v1/x",
                "body": {"purpose": "risk_assessment"},
                "token": None,
                "concurrency": 2,
                "seconds": 5,
                "max_requests": 40,
            }
        )
    finally:
        server.shutdown()
    assert figures["error_kinds"] == {"http_403": figures["errors"]}
    assert figures["ok"] >= 19 and figures["errors"] >= 19
    # Stopped by the cap, not the clock: about 40 answers, and a window well under 5 s.
    assert figures["requests"] <= 40 + 2
    assert 0 < figures["seconds"] < 4
    assert figures["throughput_per_s"] == figures["ok"] / figures["seconds"]
    assert figures["warm_up_errors"] == {"http_403": 2}
    assert all(body == b'{"purpose": "risk_assessment"}' for _, body in _Alternating.seen)
