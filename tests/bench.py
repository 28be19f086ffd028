"""`make bench`: what one decision and one whole disclosure cost on this machine.

Run with `python -m tests.bench`. Prints a small table; nothing here is asserted (timings belong
here, not in tests). The disclosure numbers go through the real stack: HTTP app in process,
SQLite, the embedded Rego engine, and the demo's SQL and REST sources over loopback.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session

from hub.api.app import create_app, state_from_settings
from hub.bootstrap import initialise
from hub.config import Settings
from hub.demo.assertion import make_client_assertion
from hub.demo.builder import build_demo
from hub.demo.sources import SourceServer, rest_source_app
from hub.services.auth import CLIENT_ASSERTION_TYPE
from tests.policies import bench as policy_bench
from tests.policies.bench import summary
from tests.ports import free_port


def _timed(fn: Callable[[], object], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def _row(name: str, runs: int, stats: dict[str, float]) -> str:
    return f"{name:<40} {runs:>6} {stats['median_us']:>12.0f} {stats['p99_us']:>12.0f}"


def bench_disclosure(runs: int = 200) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "var",
            master_key=base64.b64encode(os.urandom(32)).decode(),
            demo_sources_port=free_port(),
        )
        opened = initialise(settings)
        with Session(opened.engine, expire_on_commit=False) as session:
            build_demo(
                settings=settings, session=session, keyring=opened.keyring, now=datetime.now(UTC)
            )
        opened.engine.dispose()
        clients = {
            c["agency"]: c for c in json.loads((settings.demo_dir / "clients.json").read_text())
        }
        users = {
            u["username"]: u for u in json.loads((settings.demo_dir / "users.json").read_text())
        }
        with (
            SourceServer(
                rest_source_app(settings.demo_dir / "sources"), port=settings.demo_sources_port
            ),
            TestClient(create_app(state_from_settings(settings))) as client,
        ):
            school = clients["northtown-academy"]
            assertion = make_client_assertion(
                client_id=school["client_id"],
                kid=school["kid"],
                private_key_pem=school["private_key_pem"],
                audience=settings.token_endpoint,
            )
            token = client.post(
                "/v1/token",
                data={
                    "grant_type": "client_credentials",
                    "client_assertion_type": CLIENT_ASSERTION_TYPE,
                    "client_assertion": assertion,
                },
            ).json()["access_token"]
            agency = {"Authorization": f"Bearer {token}"}
            coord_token = client.post(
                "/v1/login",
                json={
                    "username": "coordinator",
                    "password": users["coordinator"]["password"],
                },
            ).json()["access_token"]
            coord = {"Authorization": f"Bearer {coord_token}"}
            case = client.post(
                "/v1/referrals",
                headers=agency,
                json={
                    "panel": "northtown",
                    "subject": {
                        "given_name": "Alex",
                        "family_name": "Example",
                        "date_of_birth": "2011-03-14",
                        "local_id": "NA-2231",
                    },
                    "indicators": ["withdrawal_from_peers"],
                },
            ).json()["id"]
            designated = ["northtown-academy", "northtown-childrens-services"]
            for move in (
                {"to": "screening", "reason": "bench"},
                {"to": "assessment", "reason": "bench", "designated_agencies": designated},
            ):
                client.post(f"/v1/cases/{case}/transitions", headers=coord, json=move)
            client.post(
                f"/v1/cases/{case}/consents",
                headers=coord,
                json={
                    "given_by": "parent",
                    "recipients": ["northtown-academy"],
                    "purposes": ["risk_assessment"],
                    "categories": ["education", "social_care"],
                },
            )
            body = {"purpose": "risk_assessment", "categories": ["education", "social_care"]}

            def one() -> None:
                response = client.post(f"/v1/cases/{case}/disclosures", headers=agency, json=body)
                assert response.status_code == 200, response.text

            _timed(one, 10)
            return _timed(one, runs)


def main() -> None:
    policy = policy_bench.main(5000)
    disclosure = bench_disclosure()
    print(f"{'what':<40} {'runs':>6} {'median µs':>12} {'p99 µs':>12}")
    print(_row("policy decision, embedded (regorus VM)", policy["runs"], policy["embedded"]))
    print(_row("policy decision, real OPA evaluator", policy["runs"], policy["opa"]))
    ratio = policy["opa"]["median_us"] / policy["embedded"]["median_us"]
    print(f"  (embedded is {ratio:.1f}x faster at the median, over {policy['inputs']} inputs)")
    print(_row("disclosure, 2 sources, SQLite store", len(disclosure), summary(disclosure)))


if __name__ == "__main__":
    main()
