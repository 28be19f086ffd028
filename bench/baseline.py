"""The baseline: the best a broker could do here — the same connector fetch, nothing else.

It answers ``POST /v1/cases/{case_id}/disclosures`` with the same body as the hub, and asks the
same demo source systems, through the same connectors (``connectors.build_connector`` and
``fetch_all`` with one shared ``FetchPool``, built once per worker and reused, as the hub's
registry does), for the same
categories of the same subject. It does no token check, no policy decision, no
pseudonymisation and no audit append: the difference between it and the hub is the price of
those safeguards. It is a benchmark fixture, not part of the hub's API.

Served with ``python -m bench.baseline --port P --workers N``, through the same
``hub.api.serving.serve`` as ``hub serve``; ``BENCH_SOURCES_DIR`` names the
demo's source directory (its ``*.toml`` connector configs) and ``BENCH_LOCAL_IDS`` is a JSON
object of agency -> that agency's local id for the subject.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from connectors import (
    Connector,
    FetchPool,
    SourceQuery,
    build_connector,
    fetch_all,
    load_connector_config,
)

# The hub's default (Settings.connector_timeout_seconds), so both wait for sources alike.
FETCH_TIMEOUT_SECONDS = 5.0


class FetchRequest(BaseModel):
    purpose: str = Field(max_length=64)
    categories: list[str] = Field(min_length=1, max_length=16)


def load_connectors(sources_dir: Path) -> dict[str, Connector]:
    """Every demo agency's connector, by agency id (the TOML file's stem)."""
    return {
        path.stem: build_connector(load_connector_config(path))
        for path in sorted(sources_dir.glob("*.toml"))
    }


def create_baseline_app(connectors: dict[str, Connector], local_ids: dict[str, str]) -> FastAPI:
    app = FastAPI(title="bench baseline", docs_url=None, redoc_url=None, openapi_url=None)
    # One shared fan-out pool per worker with the hub's default bounds, as the hub's registry has.
    pool = FetchPool()

    # A plain `def`, like the hub's handler: both run in the same worker thread pool.
    @app.post("/v1/cases/{case_id}/disclosures")
    def fetch(case_id: str, body: FetchRequest) -> dict[str, Any]:
        requests = {}
        for agency_id, connector in connectors.items():
            wanted = tuple(c for c in sorted(set(body.categories)) if c in connector.categories)
            if wanted and agency_id in local_ids:
                requests[agency_id] = (
                    connector,
                    SourceQuery(local_id=local_ids[agency_id], categories=wanted),
                )
        results = fetch_all(requests, timeout=FETCH_TIMEOUT_SECONDS, pool=pool)
        records: dict[str, list[dict[str, Any]]] = {c: [] for c in body.categories}
        for agency_id in sorted(results):
            for record in results[agency_id].records.records:
                records[record.category].append({"source": agency_id, "fields": record.fields})
        return {
            "case_id": case_id,
            "records": records,
            "sources": {a: {"status": r.status} for a, r in results.items()},
        }

    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``."""
    sources_dir = Path(os.environ["BENCH_SOURCES_DIR"])
    local_ids: dict[str, str] = json.loads(os.environ["BENCH_LOCAL_IDS"])
    return create_baseline_app(load_connectors(sources_dir), local_ids)


def main() -> None:
    """Serve the baseline as `hub serve` serves the hub (`hub.api.serving.serve`)."""
    from hub.api.serving import serve

    parser = argparse.ArgumentParser(description="Serve the pass-through baseline.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    serve("bench.baseline:app_from_env", host="127.0.0.1", port=args.port, workers=args.workers)


if __name__ == "__main__":
    main()
